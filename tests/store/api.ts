// The store and crypto APIs under test, for tests/store, tests/crypto and the fixtures.
export * from "../../actors/index.ts";
