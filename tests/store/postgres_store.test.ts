// The store suite against the native PostgreSQL that deploy/services.sh starts. That server has
// no pgvector: the vector tests then assert SF_ERR_VECTOR_UNAVAILABLE (their names say so); on a
// server with pgvector they run in full and fail when the functions misbehave.
import { postgresTarget } from "./harness.ts";
import { defineStoreSuite } from "./store_suite.ts";

defineStoreSuite(await postgresTarget());
