/**
 * The faults a chaos run injects while its load runs. Each fault injects, holds for a while, and
 * undoes itself (a killed process is started again, a stopped one continued, a restarted server
 * is waited for), so the next fault starts from a whole platform.
 */
import type { Fault as ProviderFault, FaultRule } from "../../tests/fixtures/providers/provider_fixture.ts";
import type { ChaosStack, RoleKind } from "./stack.ts";

export const FaultKinds = [
  "worker_sigkill",
  "worker_sigstop",
  "host_sigkill",
  "host_sigstop",
  "gateway_sigkill",
  "gateway_sigstop",
  "nats_restart",
  "nats_node_kill",
  "postgres_restart",
  "provider_faults",
  "provider_timeouts",
  "mixed",
] as const;

export type FaultKind = (typeof FaultKinds)[number];

export interface FaultTimings {
  /** How long a SIGSTOPped worker or gateway stays stopped. */
  stopHoldMs: number;
  /** How long a SIGSTOPped actor host stays stopped (past its lease TTL: its partitions move). */
  hostStopHoldMs: number;
  /** How long a killed process or NATS node stays down before it is started again. */
  downMs: number;
  /** How long the provider fixture keeps injecting faults. */
  providerFaultMs: number;
}

export interface InjectedFault {
  kind: FaultKind;
  /** The processes or server it hit. */
  targets: string[];
  /** ms since the run's start: the fault, and the moment everything was whole again. */
  at: number;
  recoveredAt: number;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** The chat faults the provider fixture injects (each rule for a few calls). */
export function providerFaultRules(times: number): FaultRule[] {
  const faults: ProviderFault[] = [
    { type: "rate_limit", retryAfterSeconds: 1 },
    { type: "server_error", status: 503 },
    { type: "server_error", status: 500 },
    { type: "cut_stream", afterTokens: 2 },
    { type: "truncate_stream", afterTokens: 2 },
    { type: "slow_first_token", delayMs: 1500 },
  ];
  return faults.map((fault) => ({ provider: "groq", kind: "chat", times, fault }));
}

export class FaultInjector {
  readonly #stack: ChaosStack;
  readonly #t: FaultTimings;
  readonly #now: () => number;
  readonly #next = new Map<RoleKind, number>();

  constructor(stack: ChaosStack, timings: FaultTimings, now: () => number) {
    this.#stack = stack;
    this.#t = timings;
    this.#now = now;
  }

  /** The next process of a kind, in turn (so every gateway, host and worker gets hit). */
  #pick(kind: RoleKind): string {
    const roles = this.#stack.rolesOf(kind);
    const i = this.#next.get(kind) ?? 0;
    this.#next.set(kind, i + 1);
    const role = roles[i % roles.length];
    if (role === undefined) throw new Error(`the chaos stack has no ${kind}`);
    return role.name;
  }

  async #killAndRestart(name: string): Promise<void> {
    await this.#stack.kill(name);
    await sleep(this.#t.downMs);
    await this.#stack.restart(name);
  }

  async #stopAndContinue(name: string, holdMs: number): Promise<void> {
    this.#stack.freeze(name);
    await sleep(holdMs);
    this.#stack.thaw(name);
  }

  /** Injects one fault, holds it, undoes it. */
  async run(kind: FaultKind): Promise<InjectedFault> {
    const at = this.#now();
    const targets = await this.#inject(kind);
    return { kind, targets, at, recoveredAt: this.#now() };
  }

  async #inject(kind: FaultKind): Promise<string[]> {
    const s = this.#stack;
    switch (kind) {
      case "worker_sigkill":
      case "host_sigkill":
      case "gateway_sigkill": {
        const name = this.#pick(kind.split("_")[0] as RoleKind);
        await this.#killAndRestart(name);
        return [name];
      }
      case "worker_sigstop":
      case "gateway_sigstop": {
        const name = this.#pick(kind.split("_")[0] as RoleKind);
        await this.#stopAndContinue(name, this.#t.stopHoldMs);
        return [name];
      }
      case "host_sigstop": {
        const name = this.#pick("host");
        await this.#stopAndContinue(name, this.#t.hostStopHoldMs);
        return [name];
      }
      case "nats_restart": {
        if (s.nats === undefined) throw new Error("nats_restart needs the single nats-server stack");
        await s.nats.restart();
        return ["nats-server"];
      }
      case "nats_node_kill": {
        const cluster = s.cluster;
        if (cluster === undefined) throw new Error("nats_node_kill needs the cluster stack");
        // The node that leads the dispatch stream: the worst one to lose.
        const node = (await cluster.streamLeader("SF_DISPATCH")) ?? "nats-1";
        await cluster.kill(node);
        await sleep(this.#t.downMs);
        await cluster.restart(node);
        return [node];
      }
      case "postgres_restart":
        await s.postgres.restart();
        return ["postgres"];
      case "provider_faults": {
        for (const rule of providerFaultRules(4)) s.fixture.addFault(rule);
        await sleep(this.#t.providerFaultMs);
        s.fixture.reset();
        return ["provider-fixture"];
      }
      case "provider_timeouts": {
        // Past the LLM client's first-token deadline (15 s): the job times out and is retried.
        s.fixture.addFault({
          provider: "groq",
          kind: "chat",
          times: 2,
          fault: { type: "slow_first_token", delayMs: 16_000 },
        });
        await sleep(this.#t.providerFaultMs);
        s.fixture.reset();
        return ["provider-fixture"];
      }
      case "mixed": {
        const worker = this.#pick("worker");
        const host = this.#pick("host");
        const gateway = this.#pick("gateway");
        for (const rule of providerFaultRules(2)) s.fixture.addFault(rule);
        await Promise.all([
          this.#killAndRestart(worker),
          this.#stopAndContinue(host, this.#t.hostStopHoldMs),
          this.#killAndRestart(gateway),
          s.nats !== undefined
            ? sleep(this.#t.stopHoldMs).then(() => s.postgres.restart())
            : Promise.resolve(),
        ]);
        s.fixture.reset();
        return [worker, host, gateway, "provider-fixture", ...(s.nats !== undefined ? ["postgres"] : [])];
      }
    }
  }
}
