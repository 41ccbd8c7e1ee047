// Public surface of agent-worker/: provider clients and their coded errors. Other folders import
// only this file.
import type * as VoiceRuntime from "./voice/voice_runtime.ts";

export {
  AgentWorkerErrorCodes,
  ProviderMisconfiguredError,
  ProviderAuthError,
  ProviderRateLimitedError,
  ProviderUnavailableError,
  ProviderRequestRejectedError,
  ProviderBadResponseError,
  ProviderStreamInterruptedError,
  ProviderTimeoutError,
  ProviderAbortedError,
  JobTimeoutError,
  JobSupersededError,
} from "./errors.ts";
export type { AgentWorkerErrorCode } from "./errors.ts";
export {
  PROVIDER_KINDS,
  LLM_PROVIDERS,
  EMBEDDING_PROVIDERS,
  STT_PROVIDERS,
  TTS_PROVIDERS,
  CARTESIA_VERSION,
  knownProviders,
} from "./providers/registry.ts";
export type {
  ProviderKind,
  ProviderEndpoints,
  LlmProviderName,
  EmbeddingProviderName,
  SttProviderName,
  TtsProviderName,
} from "./providers/registry.ts";
export {
  resolveProviders,
  parseProviderClientOptions,
  providerSettingsForAgent,
} from "./providers/resolve_providers.ts";
export type {
  EmbeddingSettings,
  ProviderSettings,
  ProviderKeys,
  ProviderClients,
  ProviderClientOptions,
  ResolvedProviderClientOptions,
} from "./providers/resolve_providers.ts";
export { OpenAiCompatibleLlmClient } from "./providers/llm_client.ts";
export type {
  LlmClient,
  ChatMessage,
  ChatRole,
  ChatRequest,
  ChatStreamOptions,
} from "./providers/llm_client.ts";
export { HttpEmbeddingsClient } from "./providers/embeddings_client.ts";
export type {
  EmbeddingsClient,
  EmbedOptions,
  EmbeddingTarget,
  EmbeddingRole,
} from "./providers/embeddings_client.ts";
export {
  DeepgramSttClient,
  CartesiaSttClient,
  OpenAiTranscriptionSttClient,
} from "./providers/stt_client.ts";
export type { SttClient, Transcript, TranscribeOptions } from "./providers/stt_client.ts";
export { DeepgramLiveSttClient } from "./providers/stt_live.ts";
export type {
  LiveSttClient,
  LiveSttClientOptions,
  LiveTranscription,
  LiveTranscriptionOptions,
  LiveTranscriptEvent,
} from "./providers/stt_live.ts";
export {
  ElevenLabsTtsClient,
  CartesiaTtsClient,
  OpenAiSpeechTtsClient,
  TTS_SAMPLE_RATE,
  OPENAI_SPEECH_SAMPLE_RATE,
} from "./providers/tts_client.ts";
export type { TtsClient, SynthesizeOptions } from "./providers/tts_client.ts";
export { encodeWav, pcmDurationMs } from "./providers/audio.ts";
export type { PcmAudio } from "./providers/audio.ts";
export { parseRetryAfterMs } from "./providers/http.ts";
export type { FetchFn } from "./providers/http.ts";
export { createProviderMetrics, errorCodeLabel, NO_PROVIDER_METRICS } from "./providers/provider_metrics.ts";
export type {
  ProviderMetrics,
  ProviderCallReport,
  ProviderCallOutcome,
  PrometheusProviderMetrics,
} from "./providers/provider_metrics.ts";
export { withProviderRetry } from "./providers/retry.ts";
export type { ProviderRetryOptions } from "./providers/retry.ts";
export { JobConsumer, dispatchQueue, voiceQueue, ingestQueue } from "./worker/job_consumer.ts";
export type {
  DuplicateDelivery,
  JobConsumerOptions,
  JobContext,
  JobHandler,
  WorkJob,
  WorkQueue,
} from "./worker/job_consumer.ts";
export { textJobHandler } from "./text/text_job.ts";
export type { TextJobOptions } from "./text/text_job.ts";
export { Capacity } from "./worker/capacity.ts";
export type { AdmissionQueue, AdmissionRefusal, CapacityOptions, WorkerCapacity } from "./worker/capacity.ts";
export { LoadPressure, processLoadProbe } from "./worker/load_pressure.ts";
export type { MemoryReading } from "./worker/memory_diagnostics.ts";
export type { LoadPressureOptions, LoadProbe, LoadReading, LoadState } from "./worker/load_pressure.ts";
export { parseWorkerConfig } from "./config.ts";
export type { WorkerConfig } from "./config.ts";
export { voiceJobHandler, VoiceJobErrorCodes } from "./voice/voice_job.ts";
export type { VoiceJobOptions } from "./voice/voice_job.ts";
export {
  VoiceSession,
  VoiceSessionError,
  VoiceSessionErrorCodes,
  CHAT_TOPIC,
  TRANSCRIPTION_TOPIC,
  AGENT_AUDIO_SAMPLE_RATE,
} from "./voice/voice_session.ts";
export type {
  VoiceSessionOptions,
  SessionEndReason,
  RecordedExchange,
  AgentExchange,
  TurnContext,
} from "./voice/voice_session.ts";
/** The `@livekit/agents` side of voice sessions, loaded on demand (the library takes >1 s to import). */
export function loadVoiceRuntime(): Promise<typeof VoiceRuntime> {
  return import("./voice/voice_runtime.ts");
}
export type {
  AgentRuntime,
  AgentRuntimeOptions,
  TurnPrompts,
  TurnPromptOptions,
  EnergyVadPlugin,
  EnergyVadPluginOptions,
  ProviderReports,
} from "./voice/voice_runtime.ts";
export { closeAgentRuntime, settleWithin } from "./voice/bounded_close.ts";
export type { CloseRuntimeOptions, RuntimeCloseOutcome } from "./voice/bounded_close.ts";
export { disposeRoomHandle, releaseClosedRoom } from "./voice/room_release.ts";
export type { RoomHandleRelease } from "./voice/room_release.ts";
export { listRoomUsers } from "./voice/room_presence.ts";
export type { RoomPresenceOptions } from "./voice/room_presence.ts";
export { EnergyVad, frameRms } from "./voice/energy_vad.ts";
export type { EnergyVadOptions } from "./voice/energy_vad.ts";
export { SpeakerFloor } from "./voice/speaker_floor.ts";
export type { FloorAudio, SpeakerFloorOptions } from "./voice/speaker_floor.ts";
export {
  detectFileType,
  extractText,
  parseExtractOptions,
  DocumentUnreadableError,
  SF_ERR_DOCUMENT_UNREADABLE,
  SF_ERR_EXTRACT_OPTIONS_INVALID,
} from "./rag/extract.ts";
export type {
  DocumentFileType,
  ExtractedDocument,
  ExtractOptions,
  ResolvedExtractOptions,
} from "./rag/extract.ts";
export {
  chunkDocument,
  estimateTokens,
  parseChunkOptions,
  splitSentences,
  SF_ERR_CHUNK_OPTIONS_INVALID,
} from "./rag/chunker.ts";
export type { ChunkOptions, ResolvedChunkOptions, TextChunk } from "./rag/chunker.ts";
export { buildRagContext } from "./rag/context.ts";
export type { Citation, RagContext } from "./rag/context.ts";
export { embeddingsFor, embedTurn, retrieve } from "./rag/retrieval.ts";
export type { Retrieval, RetrievalDeps, RetrievalInput } from "./rag/retrieval.ts";
export { ingestJobHandler } from "./rag/ingest_job.ts";
export type { IngestJobOptions } from "./rag/ingest_job.ts";
export { createRagMetrics, NO_RAG_METRICS } from "./rag/rag_metrics.ts";
export type { RagMetrics, RagStep, IngestDocumentOutcome, PrometheusRagMetrics } from "./rag/rag_metrics.ts";
