/**
 * The wire format: msgpack bodies (msgpackr, native extension when it loads) inside a versioned
 * envelope whose metadata rides in NATS headers, so routers and tools can read it without
 * decoding the body.
 *
 * Request headers: `Sf-V` (envelope version), `Sf-Tenant`, `Sf-Trace` (only when it differs from
 * the request id, its default), `Sf-Deadline` (wall-clock
 * epoch ms after which the caller no longer waits), `Sf-Req` (idempotency id of the request).
 * Reply headers: `Sf-V`, `Sf-Status` (`ok` | `error`), `Sf-Host`, `Sf-Epoch` (the owner's fencing
 * epoch); an error reply's body is a `WireError`.
 */
import { headers, MsgHdrsImpl } from "@nats-io/transport-node";
import type { Msg, MsgHdrs } from "@nats-io/transport-node";
import { C1, Packr } from "msgpackr";
import { BusErrorCodes, isWireError, SfError } from "./errors.ts";
import type { WireError } from "./errors.ts";

export const ENVELOPE_VERSION = "1";

export const Headers = {
  version: "Sf-V",
  tenant: "Sf-Tenant",
  trace: "Sf-Trace",
  deadline: "Sf-Deadline",
  requestId: "Sf-Req",
  status: "Sf-Status",
  host: "Sf-Host",
  epoch: "Sf-Epoch",
} as const;

const packr = new Packr({ useRecords: false, mapsAsObjects: true, int64AsType: "number" });

export function encodeBody(value: unknown): Uint8Array {
  return packr.pack(value);
}

/** Decodes exactly one msgpack value; trailing bytes and the never-used 0xc1 byte are refused. */
export function decodeBody(data: Uint8Array): unknown {
  if (data.length === 0) return undefined;
  let values: unknown[];
  try {
    values = packr.unpackMultiple(data) as unknown[];
  } catch (err) {
    throw new SfError(BusErrorCodes.BAD_MESSAGE, "payload is not valid msgpack", { cause: err });
  }
  if (values.length !== 1 || values[0] === C1) {
    throw new SfError(BusErrorCodes.BAD_MESSAGE, "payload is not exactly one msgpack value");
  }
  return values[0];
}

export interface RequestMeta {
  tenant: string | undefined;
  traceId: string;
  /** Wall-clock epoch ms after which the caller has given up. */
  deadline: number;
  requestId: string;
}

export function requestHeaders(meta: RequestMeta): MsgHdrs {
  // Our names are fixed and canonical: set directly, without `append`'s name lookups (one of
  // the larger costs of a request on the calling side). Values get `append`'s own check.
  const h = new MsgHdrsImpl();
  const set = (name: string, value: string): void => {
    h.headers.set(name, [MsgHdrsImpl.validHeaderValue(value)]);
  };
  set(Headers.version, ENVELOPE_VERSION);
  if (meta.tenant !== undefined) set(Headers.tenant, meta.tenant);
  // The trace id defaults to the request id: sent only when it differs (one header line less).
  if (meta.traceId !== meta.requestId) set(Headers.trace, meta.traceId);
  set(Headers.deadline, String(meta.deadline));
  set(Headers.requestId, meta.requestId);
  return h;
}

/** Reads and checks a request's envelope; throws SF_ERR_BAD_MESSAGE when it is not ours. */
export function readRequest(msg: Msg): { meta: RequestMeta; body: unknown } {
  const h = msg.headers;
  // One pass over the header lines (each `get` would scan them all again).
  let version: string | undefined;
  let tenant: string | undefined;
  let traceId = "";
  let deadline = Number.NaN;
  let requestId = "";
  if (h !== undefined) {
    for (const [key, values] of h) {
      const value = values[0] ?? "";
      switch (key) {
        case Headers.version:
          version = value;
          break;
        case Headers.tenant:
          tenant = value === "" ? undefined : value;
          break;
        case Headers.trace:
          traceId = value;
          break;
        case Headers.deadline:
          deadline = Number(value);
          break;
        case Headers.requestId:
          requestId = value;
          break;
        default:
          break;
      }
    }
  }
  if (version !== ENVELOPE_VERSION) {
    throw new SfError(
      BusErrorCodes.BAD_MESSAGE,
      `missing or unsupported envelope version (want ${ENVELOPE_VERSION})`,
    );
  }
  if (traceId === "") traceId = requestId;
  if (!Number.isFinite(deadline) || requestId === "") {
    throw new SfError(BusErrorCodes.BAD_MESSAGE, "envelope lacks a deadline or a request id");
  }
  const body = decodeBody(msg.data);
  return { meta: { tenant, traceId, deadline, requestId }, body };
}

export interface ReplyMeta {
  host?: string;
  epoch?: number;
}

/**
 * Header sets that never change after they are built encode once: a host answers every turn of
 * one owner epoch with the same reply headers.
 */
class FixedHeaders extends MsgHdrsImpl {
  #bytes: Uint8Array | undefined;
  override encode(): Uint8Array {
    this.#bytes ??= super.encode();
    return this.#bytes;
  }
}

/** Reply headers to reuse for every reply with the same status and meta (never mutate them). */
export function fixedReplyHeaders(status: "ok" | "error", meta: ReplyMeta): MsgHdrs {
  const h = new FixedHeaders();
  h.append(Headers.version, ENVELOPE_VERSION);
  h.append(Headers.status, status);
  if (meta.host !== undefined) h.append(Headers.host, meta.host);
  if (meta.epoch !== undefined) h.append(Headers.epoch, String(meta.epoch));
  return h;
}

export function replyHeaders(status: "ok" | "error", meta: ReplyMeta): MsgHdrs {
  const h = headers();
  h.append(Headers.version, ENVELOPE_VERSION);
  h.append(Headers.status, status);
  if (meta.host !== undefined) h.append(Headers.host, meta.host);
  if (meta.epoch !== undefined) h.append(Headers.epoch, String(meta.epoch));
  return h;
}

export function encodeOkReply(body: unknown, meta: ReplyMeta = {}): { data: Uint8Array; headers: MsgHdrs } {
  return { data: encodeBody(body), headers: replyHeaders("ok", meta) };
}

export function encodeErrorReply(
  error: WireError,
  meta: ReplyMeta = {},
): { data: Uint8Array; headers: MsgHdrs } {
  return { data: encodeBody(error), headers: replyHeaders("error", meta) };
}

export type DecodedReply =
  | { type: "ok"; body: unknown; host: string | undefined; epoch: number | undefined }
  | { type: "error"; error: WireError; host: string | undefined; epoch: number | undefined };

export function readReply(msg: Msg): DecodedReply {
  const h = msg.headers;
  // One pass over the header lines, as in readRequest (the first value of each name counts).
  let version: string | undefined;
  let status: string | undefined;
  let host: string | undefined;
  let epoch: number | undefined;
  if (h !== undefined) {
    for (const [key, values] of h) {
      const value = values[0] ?? "";
      switch (key) {
        case Headers.version:
          version = value;
          break;
        case Headers.status:
          status = value;
          break;
        case Headers.host:
          host = value === "" ? undefined : value;
          break;
        case Headers.epoch:
          epoch = value === "" ? undefined : Number(value);
          break;
        default:
          break;
      }
    }
  }
  if (version !== ENVELOPE_VERSION) {
    throw new SfError(BusErrorCodes.BAD_MESSAGE, "reply without a supported envelope version");
  }
  const body = decodeBody(msg.data);
  if (status === "error") {
    if (!isWireError(body))
      throw new SfError(BusErrorCodes.BAD_MESSAGE, "error reply without a coded error body");
    return { type: "error", error: body, host, epoch };
  }
  return { type: "ok", body, host, epoch };
}
