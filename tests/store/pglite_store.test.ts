// The store suite against the embedded PGlite (pgvector included): everything runs.
import { pgliteTarget } from "./harness.ts";
import { defineStoreSuite } from "./store_suite.ts";

defineStoreSuite(await pgliteTarget());
