export { ActorErrorCodes, InvalidArgumentError, ConfigError } from "./errors.ts";
export { parseActorHostConfig } from "./config.ts";
export type { ActorHostConfig } from "./config.ts";
export { ActorHost } from "./runtime/actor_host.ts";
export type { ActorHostOptions } from "./runtime/actor_host.ts";
export type { Actor, ActorContext, ActorFactory, ActorMessage } from "./runtime/actor.ts";
export { FencedState, readStateRecord } from "./runtime/fenced_state.ts";
export { LeaseTable, leaseKey, partitionFromKey } from "./runtime/lease_table.ts";
export type { Lease, LeaseEvent, LeaseTableOptions } from "./runtime/lease_table.ts";
export { KeyView } from "./runtime/key_view.ts";
export type { KeyViewOptions } from "./runtime/key_view.ts";
export { Mailbox } from "./runtime/mailbox.ts";
export { createHostMetrics, serveMetrics } from "./runtime/metrics.ts";
export type { HostMetrics, MetricsServer } from "./runtime/metrics.ts";
export { createLogger } from "./runtime/logger.ts";
export { envInt, onShutdown, WORKER_MALLOC_ENV, withWorkerMallocEnv } from "./runtime/process_env.ts";
export type { Env } from "./runtime/process_env.ts";
export type { LoggerOptions } from "./runtime/logger.ts";
export { TenantActor, TenantOps, tenantActorFactory } from "./tenant/tenant_actor.ts";
export type { CounterReply, TenantActorDeps } from "./tenant/tenant_actor.ts";
export { watchCredentialEvents } from "./tenant/credential_events.ts";
export type { CredentialEventsOptions } from "./tenant/credential_events.ts";
export { chatSubject, jobProblem, JobEventTypes } from "./dispatch/job.ts";
export { Dispatcher, DispatchErrorCodes } from "./dispatch/dispatcher.ts";
export type { Claim, DispatcherOptions, DispatchOptions } from "./dispatch/dispatcher.ts";
export {
  DISPATCH_SERVICE,
  DispatchStats,
  mergeDispatchWindows,
  parseDispatchWindow,
  serveDispatchStats,
} from "./dispatch/dispatch_stats.ts";
export type { DispatchSummary, DispatchWindow, DispatchStatsOptions } from "./dispatch/dispatch_stats.ts";
export { deferReply } from "./runtime/actor.ts";
export type { DeferredReply } from "./runtime/actor.ts";
export type { ChatFrame, DispatchJob, JobEvent, JobEventType, JobMode } from "./dispatch/job.ts";
export { TenantDispatch, DispatchOps, DispatchOpErrorCodes, asUuid } from "./tenant/dispatch_ops.ts";
export { DocumentOps, TenantDocuments } from "./tenant/document_ops.ts";
export { ClientSettingsCache } from "./tenant/client_settings.ts";
export { AGENT_COLUMN_FIELDS, agentView, isoText } from "./tenant/agent_view.ts";
export { ProviderKeyOps, PROVIDER_NAME_PATTERN } from "./tenant/provider_key_ops.ts";
export type { ProviderKeyView } from "./tenant/provider_key_ops.ts";
export { ingestPublisher } from "./dispatch/ingest_publisher.ts";
export { WorkerOps } from "./dispatch/worker_ops.ts";
export { WORKER_SERVICE, parseWorkerStats } from "./dispatch/worker_stats.ts";
export type { ProviderErrorCount, QueueSlots, WorkerStatsReply } from "./dispatch/worker_stats.ts";
export type {
  WorkerOpName,
  ProviderCheckKind,
  ProviderCheckReply,
  ProviderCheckRequest,
  ProviderCheckResult,
} from "./dispatch/worker_ops.ts";
export type {
  CreateDocumentReply,
  DocumentView,
  IngestContextReply,
  IngestPublisher,
  RagJobInfo,
  RagSearchReply,
  TenantDocumentsOptions,
  TenantSettingsAccess,
} from "./tenant/document_ops.ts";
export {
  agentRagSettings,
  describeFingerprint,
  embeddingFingerprint,
  fingerprintKey,
  RagErrorCodes,
} from "./tenant/rag_settings.ts";
export type { AgentRagSettings, EmbeddingFingerprint } from "./tenant/rag_settings.ts";
export { DOCUMENT_FILE_TYPES, ingestJobProblem } from "./dispatch/ingest_job.ts";
export type { DocumentFileType, IngestJob } from "./dispatch/ingest_job.ts";
export { detectFileType } from "./dispatch/file_type.ts";
export type {
  HistoryTurn,
  JobContextReply,
  TenantDispatchOptions,
  TextJobContext,
  TextJobResult,
  TriggerReply,
  VoiceTriggerInfo,
} from "./tenant/dispatch_ops.ts";
export { PlatformService } from "./platform/platform_service.ts";
export type { PlatformHealth, PlatformOp, PlatformServiceOptions } from "./platform/platform_service.ts";

// Data layer: platform and tenant stores, migrations.
export {
  StoreErrorCodes,
  TenantNotFoundError,
  AgentNotFoundError,
  NotFoundError,
  AlreadyExistsError,
  InvalidInputError,
  SchemaMissingError,
  VectorUnavailableError,
  EmbeddingDimensionMismatchError,
  MigrationChecksumMismatchError,
  MigrationFailedError,
  DatabaseUnavailableError,
  DatabaseError,
  TenantDatabaseNotConfiguredError,
  StoreClosedError,
  InvalidStoreOptionsError,
  toStoreError,
} from "./store/errors.ts";
export type { StoreErrorCode } from "./store/errors.ts";
export { CLIENT_STATUSES, CLIENT_SECRET_FIELDS } from "./store/types.ts";
export type {
  TenantDatabaseConfig,
  TenantDatabaseKind,
  LivekitCredentials,
  ClientStatus,
  ClientRecord,
  ClientSettings,
  EmbeddingSettings,
  EmbeddingIndexInfo,
  CreateClientInput,
  UpdateClientInput,
  ClientSecretField,
  ClientSecretInfo,
  ApiKeyRecord,
  CreateApiKeyInput,
  CreatedApiKey,
  AuditEntryInput,
  AuditEntry,
  ListPage,
  PlatformStore,
  VoiceSettings,
  AgentRecord,
  AgentInput,
  AgentPatch,
  ConversationRecord,
  CreateConversationInput,
  TranscriptRole,
  TranscriptRecord,
  AppendTurnInput,
  AppendedTurn,
  DocumentRecord,
  CreateDocumentInput,
  DocumentPatch,
  ChunkInput,
  ChunkRecord,
  AgentDocumentRecord,
  DocumentMatch,
  TranscriptMatch,
  TranscriptToEmbed,
  MatchDocumentsInput,
  MatchTranscriptsInput,
  ProviderKeyInfo,
  TenantStoreCapabilities,
  TenantStore,
} from "./store/types.ts";
export {
  createPostgresDatabase,
  createPgliteDatabase,
  quoteIdent,
  SCHEMA_NAME_PATTERN,
} from "./store/sql_database.ts";
export type { SqlDatabase, SqlQueryable, SqlDialect, PostgresDatabaseOptions } from "./store/sql_database.ts";
export { PgliteInstances, isMemoryLocation } from "./store/pglite_instances.ts";
export {
  loadMigrations,
  renderMigration,
  renderMigrationScript,
  applyMigrations,
  appliedMigrations,
  validateEmbeddingDimension,
  DEFAULT_EMBEDDING_DIMENSION,
  MAX_INDEXED_VECTOR_DIMENSION,
  DEFAULT_MIGRATIONS_DIR,
} from "./store/migrations.ts";
export type {
  Migration,
  MigrationSet,
  MigrationParams,
  ApplyMigrationsOptions,
  MigrationReport,
} from "./store/migrations.ts";
export { SqlPlatformStore, CLIENT_SLUG_PATTERN } from "./store/sql_platform_store.ts";
export type { SqlPlatformStoreOptions } from "./store/sql_platform_store.ts";
export { SqlTenantStore, TENANT_TABLES, TENANT_RPC_FUNCTIONS } from "./store/sql_tenant_store.ts";
export type { SqlTenantStoreOptions } from "./store/sql_tenant_store.ts";
export {
  SupabaseTenantStore,
  parseSupabaseTenantStoreOptions,
  verifySupabaseSchema,
  fromPostgrestError,
  SUPABASE_REQUIRED_SCHEMA,
  SUPABASE_MIGRATION_HINT,
  RealtimeNotUsed,
} from "./store/supabase_tenant_store.ts";
export type {
  SupabaseTenantStoreOptions,
  SupabaseConnectionOptions,
  ResolvedSupabaseTenantStoreOptions,
  SupabaseSchemaReport,
} from "./store/supabase_tenant_store.ts";
export { parseTenantDatabaseConfig, parseLivekitCredentials } from "./store/tenant_database_config.ts";
export {
  openPlatformStore,
  provisionTenantDatabase,
  openTenantStore,
  parseConnectionOptions,
  DEFAULT_PLATFORM_DATA_DIR,
  DEFAULT_TENANT_DATA_DIR,
} from "./store/open.ts";
export type {
  ConnectionOptions,
  ResolvedConnectionOptions,
  PlatformDatabaseConfig,
  OpenPlatformStoreOptions,
  ProvisionTenantOptions,
  ProvisionReport,
  OpenTenantStoreOptions,
} from "./store/open.ts";
export { TenantStoreCache, parseTenantStoreCacheOptions } from "./store/tenant_store_cache.ts";
export type { TenantStoreCacheOptions, ResolvedTenantStoreCacheOptions } from "./store/tenant_store_cache.ts";

// Credential crypto: envelope encryption, keyring, API keys, redaction.
export {
  CryptoErrorCodes,
  DecryptFailedError,
  UnknownKeyIdError,
  MasterKeyMismatchError,
  InvalidKeyringError,
} from "./crypto/errors.ts";
export type { CryptoErrorCode } from "./crypto/errors.ts";
export {
  Keyring,
  parseKeyringOptions,
  parseMasterKeysSpec,
  generateMasterKey,
  KEY_ID_PATTERN,
} from "./crypto/keyring.ts";
export type { KeyringOptions } from "./crypto/keyring.ts";
export {
  encryptSecret,
  decryptSecret,
  envelopeKeyId,
  ENVELOPE_PREFIX,
  ENVELOPE_VERSION,
} from "./crypto/envelope.ts";
export type { SecretContext } from "./crypto/envelope.ts";
export {
  API_KEY_PREFIX,
  generateApiKey,
  hashApiKey,
  apiKeyDisplayPrefix,
  isWellFormedApiKey,
  verifyApiKeyHash,
} from "./crypto/api_keys.ts";
export type { GeneratedApiKey } from "./crypto/api_keys.ts";
export {
  SECRET_FIELD_NAMES,
  LOG_REDACT_PATHS,
  REDACTED,
  logRedactOptions,
  maskSecret,
  redactSecrets,
  isSecretFieldName,
} from "./crypto/redact.ts";
export { rotateSecrets } from "./crypto/rotate.ts";
export type {
  RotatableSecrets,
  StoredSecret,
  RotateOptions,
  RotationReport,
  RotationFailure,
} from "./crypto/rotate.ts";
export { AgentOps, AGENT_SLUG_PATTERN } from "./tenant/agent_ops.ts";
export type { AgentOpName, AuditWriter, ConversationDetail } from "./tenant/agent_ops.ts";
export { PlatformErrorCodes, UnauthenticatedError, ForbiddenError } from "./platform/errors.ts";
export type { PlatformErrorCode } from "./platform/errors.ts";
export { PlatformOps, ClientEvents } from "./platform/messages.ts";
export {
  CORS_ORIGIN_PATTERN,
  MAX_CORS_ORIGINS,
  MAX_CORS_ORIGIN_LENGTH,
  corsOriginProblem,
  corsOriginsOf,
  parseCorsOrigins,
} from "./platform/cors_origins.ts";
export type {
  PlatformOpName,
  ClientView,
  ClientDetailView,
  TenantDatabaseView,
  LivekitView,
  CredentialsView,
  ApiKeyView,
  ClientsCreateRequest,
  ClientsListRequest,
  ClientsListReply,
  ClientsCountReply,
  ClientsUpdateRequest,
  ClientsSetCredentialsRequest,
  ClientsDeleteReply,
  ApiKeysCreateRequest,
  ApiKeysCreateReply,
  ApiKeysListReply,
  ApiKeysRevokeRequest,
  ApiKeysVerifyRequest,
  VerifiedApiKey,
  CorsOriginListedRequest,
  CorsOriginListedReply,
} from "./platform/messages.ts";
export type { VoiceJobLivekit } from "./tenant/dispatch_ops.ts";
export {
  VoiceErrorCodes,
  LivekitNotConfiguredError,
  LivekitUnavailableError,
  RoomConflictError,
  LivekitCredentialsCache,
  requireLivekitCredentials,
  SIDEKICK_AGENT_NAME,
  USER_TOKEN_TTL_SECONDS,
  AGENT_TOKEN_TTL_SECONDS,
  ensureVoiceRoom,
  mintUserToken,
  mintAgentToken,
  redactTokens,
} from "./voice/index.ts";
export type {
  LivekitCredentialsLoader,
  VoiceRoomMetadata,
  EnsureRoomOptions,
  RoomStatus,
} from "./voice/index.ts";
