/** One provider fixture per test file, with the hooks every provider suite had written out. */
import { afterAll, beforeAll, beforeEach } from "vitest";
import { startProviderFixture } from "../fixtures/providers/provider_fixture.ts";
import type { ProviderFixture } from "../fixtures/providers/provider_fixture.ts";

/**
 * The file's provider fixture: started before its tests (handed to `use`), reset before each test
 * (no scripted reply, fault or recorded call carries over), closed after the last.
 */
export function useProviderFixture(use: (fixture: ProviderFixture) => void): void {
  let fixture: ProviderFixture | undefined;
  beforeAll(async () => {
    fixture = await startProviderFixture();
    use(fixture);
  });
  afterAll(async () => {
    await fixture?.close();
  });
  beforeEach(() => {
    fixture?.reset();
  });
}
