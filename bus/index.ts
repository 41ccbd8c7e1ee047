export {
  SfError,
  RemoteError,
  toWireError,
  fromWireError,
  isWireError,
  natsUnavailableError,
  BusErrorCodes,
} from "./errors.ts";
export type { WireError, BusErrorCode, SfErrorOptions } from "./errors.ts";
export { fnv1a32, partitionOf } from "./partition.ts";
export { createSubjects, assertToken, isToken } from "./subjects.ts";
export type { Subjects, SubjectsOptions, DispatchMode } from "./subjects.ts";
export {
  ENVELOPE_VERSION,
  Headers,
  encodeBody,
  decodeBody,
  requestHeaders,
  readRequest,
  encodeOkReply,
  replyHeaders,
  fixedReplyHeaders,
  encodeErrorReply,
  readReply,
} from "./codec.ts";
export type { RequestMeta, ReplyMeta, DecodedReply } from "./codec.ts";
export { connectBus, watchBusStatus } from "./connection.ts";
export type { BusConnectionOptions, BusStatusEvent } from "./connection.ts";
export { requestReply } from "./request.ts";
export { ReplyMux } from "./reply_mux.ts";
export type { MuxOutcome } from "./reply_mux.ts";
export type { AbortLike, RequestOptions, RequestResult } from "./request.ts";
export { provisionBus, parseProvisionOptions, ensureKvBucket } from "./provision.ts";
export { retryWhileUnavailable } from "./startup.ts";
export type { StartupRetryOptions } from "./startup.ts";
export type { ProvisionOptions, ResolvedProvisionOptions, Provisioned } from "./provision.ts";
