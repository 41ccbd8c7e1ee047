// The voice path's actor side: LiveKit credentials, rooms and tokens.
export {
  VoiceErrorCodes,
  LivekitNotConfiguredError,
  LivekitUnavailableError,
  RoomConflictError,
} from "./errors.ts";
export { LivekitCredentialsCache, requireLivekitCredentials } from "./livekit_credentials.ts";
export type { LivekitCredentialsLoader } from "./livekit_credentials.ts";
export {
  SIDEKICK_AGENT_NAME,
  USER_TOKEN_TTL_SECONDS,
  AGENT_TOKEN_TTL_SECONDS,
  ensureVoiceRoom,
  mintUserToken,
  mintAgentToken,
  redactTokens,
} from "./voice_room.ts";
export type { VoiceRoomMetadata, EnsureRoomOptions, RoomStatus } from "./voice_room.ts";
