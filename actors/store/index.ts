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
} from "./errors.ts";
export type { StoreErrorCode } from "./errors.ts";
export { CLIENT_STATUSES, CLIENT_SECRET_FIELDS } from "./types.ts";
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
} from "./types.ts";
export {
  createPostgresDatabase,
  createPgliteDatabase,
  quoteIdent,
  SCHEMA_NAME_PATTERN,
} from "./sql_database.ts";
export type { SqlDatabase, SqlQueryable, SqlDialect, PostgresDatabaseOptions } from "./sql_database.ts";
export { PgliteInstances, isMemoryLocation } from "./pglite_instances.ts";
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
} from "./migrations.ts";
export type {
  Migration,
  MigrationSet,
  MigrationParams,
  ApplyMigrationsOptions,
  MigrationReport,
} from "./migrations.ts";
export { SqlPlatformStore, CLIENT_SLUG_PATTERN } from "./sql_platform_store.ts";
export type { SqlPlatformStoreOptions } from "./sql_platform_store.ts";
export { SqlTenantStore, TENANT_TABLES, TENANT_RPC_FUNCTIONS } from "./sql_tenant_store.ts";
export type { SqlTenantStoreOptions } from "./sql_tenant_store.ts";
export {
  SupabaseTenantStore,
  parseSupabaseTenantStoreOptions,
  verifySupabaseSchema,
  fromPostgrestError,
  SUPABASE_REQUIRED_SCHEMA,
  SUPABASE_MIGRATION_HINT,
} from "./supabase_tenant_store.ts";
export type {
  SupabaseTenantStoreOptions,
  SupabaseConnectionOptions,
  ResolvedSupabaseTenantStoreOptions,
  SupabaseSchemaReport,
} from "./supabase_tenant_store.ts";
export { parseTenantDatabaseConfig, parseLivekitCredentials } from "./tenant_database_config.ts";
export {
  openPlatformStore,
  provisionTenantDatabase,
  openTenantStore,
  parseConnectionOptions,
  DEFAULT_PLATFORM_DATA_DIR,
  DEFAULT_TENANT_DATA_DIR,
} from "./open.ts";
export type {
  ConnectionOptions,
  ResolvedConnectionOptions,
  PlatformDatabaseConfig,
  OpenPlatformStoreOptions,
  ProvisionTenantOptions,
  ProvisionReport,
  OpenTenantStoreOptions,
} from "./open.ts";
export { TenantStoreCache, parseTenantStoreCacheOptions } from "./tenant_store_cache.ts";
export type { TenantStoreCacheOptions, ResolvedTenantStoreCacheOptions } from "./tenant_store_cache.ts";
