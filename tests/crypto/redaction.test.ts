import { describe, expect, it } from "vitest";
import { Writable } from "node:stream";
import { pino } from "pino";
import { logRedactOptions, maskSecret, redactSecrets, REDACTED } from "../store/api.ts";

const SECRET = "sk_live_9f8e7d6c5b4a39281706f5e4d3c2b1a0";

function capture(): { lines: string[]; stream: Writable } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(chunk.toString("utf8"));
      done();
    },
  });
  return { lines, stream };
}

describe("secrets stay out of logs and responses", () => {
  it("redaction - a pino logger built with logRedactOptions prints no secret at any supported depth", () => {
    const { lines, stream } = capture();
    const log = pino({ redact: logRedactOptions() }, stream);
    log.info({ apiKey: SECRET, tenant: "t1" }, "top level");
    log.info({ credentials: { apiSecret: SECRET, serviceRoleKey: SECRET } }, "one level down");
    log.info({ tenant: { livekit: { apiSecret: SECRET, password: SECRET } } }, "two levels down");
    log.info(
      { req: { headers: { authorization: `Bearer ${SECRET}`, apikey: SECRET, "x-api-key": SECRET } } },
      "headers",
    );
    log.child({ tenant: "t1" }).warn({ token: SECRET }, "child");
    const output = lines.join("");
    expect(lines).toHaveLength(5);
    expect(output).not.toContain(SECRET);
    expect(output).toContain(REDACTED);
    expect(output).toContain('"tenant":"t1"');
  });

  it("redaction - without the options the same logger would print the secret (the test can fail)", () => {
    const { lines, stream } = capture();
    pino(stream).info({ apiKey: SECRET }, "unredacted");
    expect(lines.join("")).toContain(SECRET);
  });

  it("masking - maskSecret shows at most 4 characters and the length; redactSecrets deep-copies", () => {
    expect(maskSecret(SECRET)).toBe(`sk_l…(${SECRET.length})`);
    expect(maskSecret("short")).toBe("…(5)");
    expect(maskSecret(null)).toBe("");
    const input = { a: 1, nested: [{ api_key: SECRET, ok: "yes" }], when: new Date(0) };
    const out = redactSecrets(input);
    expect(JSON.stringify(out)).not.toContain(SECRET);
    expect(out.nested[0]?.ok).toBe("yes");
    expect(input.nested[0]?.api_key).toBe(SECRET);
  });
});
