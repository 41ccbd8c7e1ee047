/**
 * The foreground process of `npm run dev` (deploy/dev.sh execs it once the services are up and
 * the environment is set): supervises the actor host, the gateway and the agent worker (each
 * restarted with backoff when it exits on its own, output prefixed with its name), and runs the
 * demo seeding once (seed_demo.ts, whose banner is printed unprefixed). Ctrl-C, SIGTERM or SIGHUP
 * stop every process (SIGTERM, then SIGKILL after the grace period); a second Ctrl-C kills at once.
 */
import { fileURLToPath } from "node:url";
import { parseDevSupervisorConfig } from "./config.ts";
import { Supervisor } from "./supervisor.ts";
import type { SupervisedProcess, SupervisorEvent } from "./supervisor.ts";

const SEED = "seed";
const SEED_SCRIPT = "actors/cli/dev/seed_demo.ts";

const repoRoot = fileURLToPath(new URL("../../../", import.meta.url));
const config = parseDevSupervisorConfig();

function tsProcess(name: string, script: string): SupervisedProcess {
  return { name, command: process.execPath, args: ["--import", "tsx", script], cwd: repoRoot };
}

const processes: SupervisedProcess[] = [
  tsProcess("actor-host", "actors/main.ts"),
  tsProcess("gateway", "gateway/main.ts"),
  { ...tsProcess("agent-worker", "agent-worker/main.ts"), env: config.workerEnv },
];
if (config.seed) processes.push({ ...tsProcess(SEED, SEED_SCRIPT), restart: "never", rawStdout: true });

const say = (line: string): void => {
  process.stderr.write(`dev: ${line}\n`);
};

function exitText(code: number | null, signal: NodeJS.Signals | null): string {
  return signal !== null ? `killed by ${signal}` : `status ${code ?? "?"}`;
}

function report(event: SupervisorEvent): void {
  switch (event.type) {
    case "started":
      if (event.run > 1) say(`${event.name} restarted (pid ${event.pid}, run ${event.run})`);
      return;
    case "exited":
      if (event.name === SEED) {
        if (event.code !== 0 && !supervisor.stopping) {
          say(
            `seeding the demo tenant failed (${exitText(event.code, event.signal)}); the platform keeps running. ` +
              `Retry with: node --import tsx ${SEED_SCRIPT}`,
          );
        }
        return;
      }
      if (!event.expected) {
        say(
          `${event.name} (pid ${event.pid}) exited on its own (${exitText(event.code, event.signal)}) after ` +
            `${(event.uptimeMs / 1000).toFixed(1)} s`,
        );
      }
      return;
    case "restarting":
      say(`restarting ${event.name} in ${(event.delayMs / 1000).toFixed(1)} s`);
      return;
    case "spawn-failed":
      say(`${event.name} could not be started: ${event.message}`);
      return;
    case "killed":
      say(`${event.name} (pid ${event.pid}) did not stop within ${event.afterMs} ms of SIGTERM: killed`);
      return;
  }
}

const supervisor = new Supervisor({
  processes,
  initialBackoffMs: config.initialBackoffMs,
  maxBackoffMs: config.maxBackoffMs,
  resetAfterMs: config.resetAfterMs,
  stopGraceMs: config.stopGraceMs,
  onEvent: report,
});

/**
 * A Ctrl-C reaches this process twice (from the terminal, and forwarded by `npm run`): a signal
 * within this long of the first is the same one. Later ones mean "now".
 */
const REPEAT_SIGNAL_MS = 1000;

let stoppingSince: number | undefined;
function onSignal(signal: NodeJS.Signals): void {
  if (stoppingSince !== undefined) {
    if (performance.now() - stoppingSince < REPEAT_SIGNAL_MS) return;
    say(`${signal} again: killing every process now`);
    supervisor.killAll();
    process.exit(130);
  }
  stoppingSince = performance.now();
  say(`${signal}: stopping ${processes.map((p) => p.name).join(", ")}`);
  supervisor.stop().then(
    () => {
      say("stopped");
      process.exit(0);
    },
    (err: unknown) => {
      say(`stopping failed: ${err instanceof Error ? err.message : String(err)}`);
      supervisor.killAll();
      process.exit(1);
    },
  );
}
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.on(signal, onSignal);

supervisor.start();
say(`started ${processes.map((p) => `${p.name} (pid ${supervisor.pid(p.name) ?? "?"})`).join(", ")}`);
