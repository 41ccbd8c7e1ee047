/** Coded errors of the platform and tenant stores. Messages never carry secrets or row data. */
import { SfError } from "../../bus/index.ts";
import type { SfErrorOptions } from "../../bus/index.ts";

export const StoreErrorCodes = {
  /** No client (tenant) with that id or slug. */
  TENANT_NOT_FOUND: "SF_ERR_TENANT_NOT_FOUND",
  /** No agent with that slug/id in the tenant database. */
  AGENT_NOT_FOUND: "SF_ERR_AGENT_NOT_FOUND",
  /** No row with that id (conversation, document, API key, …). */
  NOT_FOUND: "SF_ERR_NOT_FOUND",
  /** A unique value (slug, id, …) is already taken. */
  ALREADY_EXISTS: "SF_ERR_ALREADY_EXISTS",
  /** Input that the store refuses before touching the database. */
  INVALID_INPUT: "SF_ERR_INVALID_INPUT",
  /** Tables, columns or functions the store needs are not in the database. */
  SCHEMA_MISSING: "SF_ERR_SCHEMA_MISSING",
  /** The `vector` extension (pgvector) is not available where it is needed. */
  VECTOR_UNAVAILABLE: "SF_ERR_VECTOR_UNAVAILABLE",
  /** A vector's dimension differs from the one the tenant's embeddings are stored with. */
  EMBEDDING_DIMENSION_MISMATCH: "SF_ERR_EMBEDDING_DIMENSION_MISMATCH",
  /** An applied migration's checksum differs from the file's: the file changed after release. */
  MIGRATION_CHECKSUM_MISMATCH: "SF_ERR_MIGRATION_CHECKSUM_MISMATCH",
  /** A migration failed to apply (the transaction was rolled back). */
  MIGRATION_FAILED: "SF_ERR_MIGRATION_FAILED",
  /** The database cannot be reached (connection refused, timed out, closed). Retryable. */
  DATABASE_UNAVAILABLE: "SF_ERR_DATABASE_UNAVAILABLE",
  /** Any other database error. */
  DATABASE: "SF_ERR_DATABASE",
  /** The tenant has no database credentials configured. */
  TENANT_DATABASE_NOT_CONFIGURED: "SF_ERR_TENANT_DATABASE_NOT_CONFIGURED",
  /** The store was closed. */
  STORE_CLOSED: "SF_ERR_STORE_CLOSED",
  /** Options that do not parse. */
  INVALID_OPTIONS: "SF_ERR_INVALID_OPTIONS",
} as const;

export type StoreErrorCode = (typeof StoreErrorCodes)[keyof typeof StoreErrorCodes];

export class TenantNotFoundError extends SfError {
  override name = "TenantNotFoundError";
  constructor(message: string, options: SfErrorOptions = {}) {
    super(StoreErrorCodes.TENANT_NOT_FOUND, message, options);
  }
}

export class AgentNotFoundError extends SfError {
  override name = "AgentNotFoundError";
  constructor(message: string, options: SfErrorOptions = {}) {
    super(StoreErrorCodes.AGENT_NOT_FOUND, message, options);
  }
}

export class NotFoundError extends SfError {
  override name = "NotFoundError";
  constructor(message: string, options: SfErrorOptions = {}) {
    super(StoreErrorCodes.NOT_FOUND, message, options);
  }
}

export class AlreadyExistsError extends SfError {
  override name = "AlreadyExistsError";
  constructor(message: string, options: SfErrorOptions = {}) {
    super(StoreErrorCodes.ALREADY_EXISTS, message, options);
  }
}

export class InvalidInputError extends SfError {
  override name = "InvalidInputError";
  constructor(message: string, options: SfErrorOptions = {}) {
    super(StoreErrorCodes.INVALID_INPUT, message, options);
  }
}

export class SchemaMissingError extends SfError {
  override name = "SchemaMissingError";
  constructor(message: string, options: SfErrorOptions = {}) {
    super(StoreErrorCodes.SCHEMA_MISSING, message, options);
  }
}

export class VectorUnavailableError extends SfError {
  override name = "VectorUnavailableError";
  constructor(message: string, options: SfErrorOptions = {}) {
    super(StoreErrorCodes.VECTOR_UNAVAILABLE, message, options);
  }
}

export class EmbeddingDimensionMismatchError extends SfError {
  override name = "EmbeddingDimensionMismatchError";
  constructor(message: string, options: SfErrorOptions = {}) {
    super(StoreErrorCodes.EMBEDDING_DIMENSION_MISMATCH, message, options);
  }
}

export class MigrationChecksumMismatchError extends SfError {
  override name = "MigrationChecksumMismatchError";
  constructor(message: string, options: SfErrorOptions = {}) {
    super(StoreErrorCodes.MIGRATION_CHECKSUM_MISMATCH, message, options);
  }
}

export class MigrationFailedError extends SfError {
  override name = "MigrationFailedError";
  constructor(message: string, options: SfErrorOptions = {}) {
    super(StoreErrorCodes.MIGRATION_FAILED, message, options);
  }
}

export class DatabaseUnavailableError extends SfError {
  override name = "DatabaseUnavailableError";
  constructor(message: string, options: SfErrorOptions = {}) {
    super(StoreErrorCodes.DATABASE_UNAVAILABLE, message, { retryable: true, ...options });
  }
}

export class DatabaseError extends SfError {
  override name = "DatabaseError";
  constructor(message: string, options: SfErrorOptions = {}) {
    super(StoreErrorCodes.DATABASE, message, options);
  }
}

export class TenantDatabaseNotConfiguredError extends SfError {
  override name = "TenantDatabaseNotConfiguredError";
  constructor(message: string, options: SfErrorOptions = {}) {
    super(StoreErrorCodes.TENANT_DATABASE_NOT_CONFIGURED, message, options);
  }
}

export class StoreClosedError extends SfError {
  override name = "StoreClosedError";
  constructor(message: string, options: SfErrorOptions = {}) {
    super(StoreErrorCodes.STORE_CLOSED, message, options);
  }
}

export class InvalidStoreOptionsError extends SfError {
  override name = "InvalidStoreOptionsError";
  constructor(message: string, options: SfErrorOptions = {}) {
    super(StoreErrorCodes.INVALID_OPTIONS, message, options);
  }
}

const CONNECTION_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EPIPE",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ECONNABORTED",
  "57P01", // admin_shutdown
  "57P02", // crash_shutdown
  "57P03", // cannot_connect_now
  "08000",
  "08001",
  "08003",
  "08006",
  "53300", // too_many_connections
]);

/**
 * Maps an error thrown by `pg` or PGlite to a coded store error. SfErrors pass through.
 * The SQLSTATE and constraint name go into `details`; row values (`detail`) do not.
 */
export function toStoreError(err: unknown, what: string): SfError {
  if (err instanceof SfError) return err;
  const e = (typeof err === "object" && err !== null ? err : {}) as {
    code?: unknown;
    message?: unknown;
    constraint?: unknown;
  };
  const code = typeof e.code === "string" ? e.code : undefined;
  const message = typeof e.message === "string" ? e.message : String(err);
  const details: Record<string, unknown> = { operation: what };
  if (code !== undefined) details["sqlstate"] = code;
  if (typeof e.constraint === "string") details["constraint"] = e.constraint;
  if (code === "23505")
    return new AlreadyExistsError(`${what}: a row with that key already exists`, { cause: err, details });
  if (code === "23503")
    return new NotFoundError(`${what}: a referenced row does not exist`, { cause: err, details });
  if (code === "42P01" || code === "42883" || code === "3F000" || code === "42703") {
    return new SchemaMissingError(`${what}: ${message} (apply the tenant migrations)`, {
      cause: err,
      details,
    });
  }
  if (/different vector dimensions|expected \d+ dimensions/i.test(message)) {
    return new EmbeddingDimensionMismatchError(`${what}: ${message}`, { cause: err, details });
  }
  // Class 22 (any other data exception: a NUL character, a value too long or out of range, …) and the
  // not-null and check violations are the caller's input, not the database failing.
  if (code !== undefined && (code.startsWith("22") || code === "23502" || code === "23514")) {
    return new InvalidInputError(`${what}: ${message}`, { cause: err, details });
  }
  if (
    (code !== undefined && CONNECTION_CODES.has(code)) ||
    // pg-pool's connectionTimeoutMillis ("timeout exceeded when trying to connect") and pg's own
    // ("Connection terminated due to connection timeout"): a server that never answered.
    /connection terminated|connect ECONNREFUSED|timeout exceeded when trying to connect/i.test(message)
  ) {
    return new DatabaseUnavailableError(`${what}: database unavailable (${message})`, {
      cause: err,
      details,
    });
  }
  return new DatabaseError(`${what}: ${message}`, { cause: err, details });
}
