/**
 * vitest global setup: one fresh PostgreSQL database per test run on the shared server, so no
 * run sees schemas or rows a previous run left behind (test names derive from random ports,
 * which repeat). Exported to every test process through SF_DATABASE_URL; dropped at the end.
 */
import { randomBytes } from "node:crypto";
import pg from "pg";
import { sharedServices } from "./services.ts";

export default async function setup(): Promise<() => Promise<void>> {
  const base = sharedServices().databaseUrl;
  const name = `sf_test_${Date.now().toString(36)}_${randomBytes(4).toString("hex")}`;
  const admin = new pg.Client({ connectionString: base });
  await admin.connect();
  try {
    await admin.query(`create database ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(base);
  url.pathname = `/${name}`;
  process.env["SF_DATABASE_URL"] = url.toString();
  return async () => {
    const client = new pg.Client({ connectionString: base });
    await client.connect();
    try {
      await client.query(`drop database if exists ${name} with (force)`);
    } finally {
      await client.end();
    }
  };
}
