// Shared bits of the provider client tests: run a stream to its end or its error, and assert
// that a promise fails with a coded error that never carries the key.
import { expect } from "vitest";
import { SfError } from "../../bus/index.ts";

export interface StreamOutcome {
  deltas: string[];
  error: SfError | undefined;
}

export async function drain(stream: AsyncIterable<string>): Promise<StreamOutcome> {
  const deltas: string[] = [];
  try {
    for await (const delta of stream) deltas.push(delta);
    return { deltas, error: undefined };
  } catch (err) {
    if (!(err instanceof SfError)) throw err;
    return { deltas, error: err };
  }
}

/** Awaits the rejection, checks it is an SfError with `code`, and returns it. */
export async function rejection(promise: Promise<unknown>, code: string): Promise<SfError> {
  let caught: unknown;
  try {
    await promise;
  } catch (err) {
    caught = err;
  }
  expect(caught, `expected a rejection with ${code}`).toBeInstanceOf(SfError);
  const err = caught as SfError;
  expect(err.code).toBe(code);
  return err;
}

/** The key appears nowhere in what an error exposes (message, details, wire form, string form). */
export function expectNoSecret(err: SfError, secret: string): void {
  expect(secret.length).toBeGreaterThan(4);
  const exposed = [err.message, String(err), JSON.stringify(err.toWire()), JSON.stringify(err.details ?? {})];
  for (const text of exposed) expect(text).not.toContain(secret);
}
