/** Coded errors of the voice path (LiveKit rooms and tokens). None ever carries an API secret. */
import { SfError } from "../../bus/index.ts";
import type { SfErrorOptions } from "../../bus/index.ts";

export const VoiceErrorCodes = {
  /** The tenant has no LiveKit credentials, or one of their fields is empty (`details.missing`). */
  LIVEKIT_NOT_CONFIGURED: "SF_ERR_LIVEKIT_NOT_CONFIGURED",
  /** The tenant's LiveKit server refused or did not answer a room call. */
  LIVEKIT_UNAVAILABLE: "SF_ERR_LIVEKIT_UNAVAILABLE",
  /** The room exists and belongs to another tenant. */
  ROOM_CONFLICT: "SF_ERR_ROOM_CONFLICT",
} as const;

export class LivekitNotConfiguredError extends SfError {
  override name = "LivekitNotConfiguredError";
  constructor(message: string, options: SfErrorOptions = {}) {
    super(VoiceErrorCodes.LIVEKIT_NOT_CONFIGURED, message, { ...options, retryable: false });
  }
}

export class LivekitUnavailableError extends SfError {
  override name = "LivekitUnavailableError";
  constructor(message: string, options: SfErrorOptions = {}) {
    super(VoiceErrorCodes.LIVEKIT_UNAVAILABLE, message, { retryable: true, ...options });
  }
}

export class RoomConflictError extends SfError {
  override name = "RoomConflictError";
  constructor(message: string, options: SfErrorOptions = {}) {
    super(VoiceErrorCodes.ROOM_CONFLICT, message, { ...options, retryable: false });
  }
}
