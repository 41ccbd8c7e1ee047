/**
 * Ports for servers a test starts in another process (nats-server nodes, postgres, the dev
 * supervisor). The port is chosen outside the kernel's ephemeral range: a port the OS hands out
 * for `listen(0)` comes from that same range as the source ports of outgoing connections, so
 * between "free" and the child's bind an outgoing connection (one NATS node dialling another, say)
 * could take it, and the child then exits with "address already in use". That happened in CI.
 */
import { readFileSync } from "node:fs";
import { createServer } from "node:net";

/** The kernel's ephemeral port range, or Linux's default when it cannot be read. */
function ephemeralRange(): [number, number] {
  try {
    const fields = readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8")
      .trim()
      .split(/\s+/)
      .map(Number);
    const low = fields[0] ?? 0;
    const high = fields[1] ?? 0;
    if (Number.isInteger(low) && Number.isInteger(high) && low > 0 && high >= low) return [low, high];
  } catch {
    // Not Linux, or no /proc: use the default range.
  }
  return [32768, 60999];
}

/** Ports this process has handed out, so that two calls never give the same port before a bind. */
const handedOut = new Set<number>();

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once("error", () => resolve(false));
    probe.listen({ port, host: "127.0.0.1", exclusive: true }, () => probe.close(() => resolve(true)));
  });
}

/** A loopback TCP port outside the ephemeral range that nothing listens on as this resolves. */
export async function freePort(): Promise<number> {
  const [low, high] = ephemeralRange();
  const candidates: Array<[number, number]> = [];
  if (low - 1 >= 10_000) candidates.push([10_000, low - 1]);
  if (high + 1 <= 65_535) candidates.push([high + 1, 65_535]);
  const total = candidates.reduce((sum, [a, b]) => sum + (b - a + 1), 0);
  if (total === 0) throw new Error(`no ports outside the ephemeral range ${low}-${high}`);
  for (let attempt = 0; attempt < 200; attempt++) {
    let index = Math.floor(Math.random() * total);
    let port = 0;
    for (const [a, b] of candidates) {
      const size = b - a + 1;
      if (index < size) {
        port = a + index;
        break;
      }
      index -= size;
    }
    if (handedOut.has(port)) continue;
    if (await bindable(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error(`no free loopback port outside the ephemeral range ${low}-${high} after 200 tries`);
}
