/**
 * The Helm chart (deploy/helm/sidekick-forge): `helm lint` and `helm template` with Helm built by
 * `go install`, then the rendered manifests are read and checked: the parts, probes, disruption
 * budgets, termination periods that fit each process's drain, secrets only from the Secret, and
 * no environment variable that the process's code does not read. The rendered NATS and
 * Prometheus configurations go through nats-server -t and promtool.
 */
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { binaryPaths, repoRoot } from "../helpers/services.ts";
import { envReadBy, isProcessName } from "./code_env.ts";
import type { ProcessName } from "./code_env.ts";
import { ensureTool, INSTALL_TIMEOUT_MS, run } from "./tools.ts";
import { at, items, parseYamlDocuments, text } from "./yaml.ts";
import type { YamlValue } from "./yaml.ts";

const CHART = path.join(repoRoot(), "deploy", "helm", "sidekick-forge");
// Helm built by `go install` carries no Kubernetes version of its own (it says 1.20).
const KUBE_VERSION = "1.30.0";
const IMAGE = "registry.test/sidekick-forge";
const SECRET = "sf-test-secret";
/** Variables that hold secrets: never a literal value in a manifest. */
const SECRET_VARS = new Set([
  "SF_MASTER_KEYS",
  "SF_MASTER_KEY_ACTIVE",
  "SF_PLATFORM_DATABASE_URL",
  "SF_ADMIN_TOKEN",
  "SF_JWT_SECRET",
  "LIVEKIT_API_KEY",
  "LIVEKIT_API_SECRET",
  "GRAFANA_ADMIN_PASSWORD",
]);

type Manifest = YamlValue | undefined;

let helm: string;
let promtool: string;

async function template(...sets: string[]): Promise<Manifest[]> {
  const args = ["template", "sf", CHART, "--namespace", "forge", "--kube-version", KUBE_VERSION];
  for (const set of [`image.repository=${IMAGE}`, `secrets.existingSecret=${SECRET}`, ...sets]) {
    args.push("--set", set);
  }
  const { stdout } = await run(helm, args);
  return parseYamlDocuments(stdout).filter((d) => d !== null);
}

function find(manifests: Manifest[], kind: string, name: string): Manifest {
  const found = manifests.find(
    (m) => text(at(m, "kind")) === kind && text(at(m, "metadata", "name")) === name,
  );
  if (found === undefined) throw new Error(`no ${kind} ${name} in the rendered chart`);
  return found;
}

function data(manifests: Manifest[], configMap: string, key: string): string {
  const value = text(at(find(manifests, "ConfigMap", configMap), "data", key));
  if (value === undefined) throw new Error(`ConfigMap ${configMap} has no ${key}`);
  return value;
}

interface PlatformContainer {
  workload: string;
  process: ProcessName;
  pod: Manifest;
  container: Manifest;
}

/** Every container of every workload, with the workload's name and pod spec. */
function containers(manifests: Manifest[]): Array<{ workload: string; pod: Manifest; container: Manifest }> {
  return manifests.flatMap((m) => {
    const pod = at(m, "spec", "template", "spec");
    const workload = text(at(m, "metadata", "name")) ?? "?";
    return items(at(pod, "containers")).map((container) => ({ workload, pod, container }));
  });
}

/** Containers that run our image, with the process their first argument starts. */
function platformContainers(manifests: Manifest[]): PlatformContainer[] {
  const out: PlatformContainer[] = [];
  for (const { workload, pod, container } of containers(manifests)) {
    if (!(text(at(container, "image")) ?? "").startsWith(`${IMAGE}:`)) continue;
    const process = text(at(container, "args", 0));
    if (!isProcessName(process)) throw new Error(`${workload}: args[0] ${String(process)} is no process`);
    out.push({ workload, process, pod, container });
  }
  return out;
}

function env(container: Manifest): Map<string, YamlValue> {
  return new Map(items(at(container, "env")).map((e) => [text(at(e, "name")) ?? "", e]));
}

function literal(container: Manifest, name: string): string | undefined {
  return text(at(env(container).get(name), "value"));
}

function num(value: YamlValue | undefined): number {
  return Number(text(value));
}

beforeAll(async () => {
  helm = await ensureTool("helm");
  promtool = await ensureTool("promtool");
}, INSTALL_TIMEOUT_MS);

describe("helm", () => {
  it("helm - lint passes in strict mode, with the defaults and without the optional parts", async () => {
    const defaults = await run(helm, ["lint", CHART, "--strict", "--kube-version", KUBE_VERSION]);
    expect(defaults.stdout).toMatch(/1 chart\(s\) linted, 0 chart\(s\) failed/);
    const minimal = await run(helm, [
      "lint",
      CHART,
      "--strict",
      "--kube-version",
      KUBE_VERSION,
      "--set",
      "nats.enabled=false,nats.url=nats://nats.example:4222,livekit.enabled=false,prometheus.enabled=false,grafana.enabled=false",
    ]);
    expect(minimal.stdout).toMatch(/0 chart\(s\) failed/);
  });

  it("helm - renders the full stack: NATS x3, gateways x2, actor hosts x2, workers, livekit, Prometheus, Grafana", async () => {
    const manifests = await template();
    expect(num(at(find(manifests, "StatefulSet", "sf-sidekick-forge-nats"), "spec", "replicas"))).toBe(3);
    expect(num(at(find(manifests, "Deployment", "sf-sidekick-forge-gateway"), "spec", "replicas"))).toBe(2);
    expect(num(at(find(manifests, "Deployment", "sf-sidekick-forge-actor-host"), "spec", "replicas"))).toBe(
      2,
    );
    expect(
      num(at(find(manifests, "Deployment", "sf-sidekick-forge-worker"), "spec", "replicas")),
    ).toBeGreaterThanOrEqual(1);
    for (const part of ["livekit", "prometheus", "grafana"]) {
      expect(num(at(find(manifests, "Deployment", `sf-sidekick-forge-${part}`), "spec", "replicas"))).toBe(1);
    }
    for (const service of [
      "gateway",
      "gateway-pods",
      "actor-host",
      "worker",
      "nats",
      "nats-headless",
      "livekit",
      "prometheus",
      "grafana",
    ]) {
      find(manifests, "Service", `sf-sidekick-forge-${service}`);
    }
    // Disruption budgets keep the NATS quorum and at least one gateway and actor host.
    const pdb = (name: string, field: string) =>
      text(at(find(manifests, "PodDisruptionBudget", `sf-sidekick-forge-${name}`), "spec", field));
    expect(pdb("nats", "maxUnavailable")).toBe("1");
    expect(pdb("gateway", "minAvailable")).toBe("1");
    expect(pdb("actor-host", "minAvailable")).toBe("1");
    expect(pdb("worker", "maxUnavailable")).toBe("1");
    // Each PDB selects its own component's pods.
    for (const name of ["nats", "gateway", "actor-host", "worker"]) {
      const spec = at(find(manifests, "PodDisruptionBudget", `sf-sidekick-forge-${name}`), "spec");
      expect(text(at(spec, "selector", "matchLabels", "app.kubernetes.io/component"))).toBe(name);
    }
  });

  it("helm - platform containers: probes, non-root and read-only, termination periods that fit the drain", async () => {
    const containers = platformContainers(await template());
    expect(containers.map((c) => c.process).sort()).toEqual(["actor-host", "gateway", "worker"]);
    for (const { workload, process, pod, container } of containers) {
      const probePath = process === "gateway" ? "/health" : "/metrics";
      for (const probe of ["startupProbe", "livenessProbe", "readinessProbe"]) {
        expect(text(at(container, probe, "httpGet", "path")), `${workload} ${probe}`).toBe(probePath);
      }
      expect(at(pod, "securityContext", "runAsNonRoot"), workload).toBe(true);
      expect(at(pod, "securityContext", "runAsUser"), workload).toBe(10001);
      expect(at(container, "securityContext", "readOnlyRootFilesystem"), workload).toBe(true);
      expect(at(container, "securityContext", "allowPrivilegeEscalation"), workload).toBe(false);
      const mounts = new Set(items(at(container, "volumeMounts")).map((v) => text(at(v, "mountPath"))));
      expect(mounts.has("/tmp") && mounts.has("/app/.sidekick"), workload).toBe(true);

      const grace = num(at(pod, "terminationGracePeriodSeconds"));
      const ms = (name: string, fallback: number) => Number(literal(container, name) ?? fallback);
      const preStop = Number(text(at(container, "lifecycle", "preStop", "exec", "command", 1)) ?? "0");
      const drainS =
        process === "gateway"
          ? preStop + ms("SF_GATEWAY_SHUTDOWN_GRACE_MS", 10_000) / 1000
          : process === "worker"
            ? ms("SF_JOB_ACK_WAIT_MS", 30_000) / 1000
            : ms("SF_CLAIM_TIMEOUT_MS", 10_000) / 1000;
      expect(grace, `${workload}: ${grace}s to terminate, ${drainS}s of drain`).toBeGreaterThanOrEqual(
        drainS + 5,
      );
    }
  });

  it("helm - every variable given to a platform container is one its process reads; secrets come from the Secret", async () => {
    const manifests = await template();
    for (const { workload, process, container } of platformContainers(manifests)) {
      expect(
        at(container, "envFrom"),
        `${workload}: envFrom would hide names from this check`,
      ).toBeUndefined();
      const read = envReadBy(process);
      const names = [...env(container).keys()];
      expect(
        names.filter((n) => !read.has(n)),
        `${workload} (${process}) sets variables its code never reads`,
      ).toEqual([]);
      for (const [name, entry] of env(container)) {
        const ref = at(entry, "valueFrom", "secretKeyRef");
        if (SECRET_VARS.has(name)) {
          expect(ref, `${workload}: ${name} must come from the Secret`).toBeDefined();
        }
        if (ref !== undefined) {
          expect(text(at(ref, "name")), `${workload}: ${name}`).toBe(SECRET);
          expect(text(at(ref, "key")), `${workload}: ${name} is stored under its own name`).toBe(name);
        }
      }
    }
    // The actor hosts cannot start without the master keys and the shared platform database.
    const host = platformContainers(manifests).find((c) => c.process === "actor-host")?.container;
    for (const required of ["SF_MASTER_KEYS", "SF_PLATFORM_DATABASE_URL"]) {
      expect(at(env(host).get(required), "valueFrom", "secretKeyRef", "optional"), required).toBe(false);
    }
    // Nothing else in the chart carries a secret as a literal either.
    for (const { workload, container } of containers(manifests)) {
      for (const [name, entry] of env(container)) {
        if (SECRET_VARS.has(name)) expect(at(entry, "value"), `${workload}: ${name}`).toBeUndefined();
      }
    }
  });

  it("helm - the processes agree on NATS, subjects, partitions, and replicas as many as NATS nodes", async () => {
    const manifests = await template("platform.partitions=512");
    const containers = platformContainers(manifests);
    for (const shared of ["NATS_URL", "SF_SUBJECT_PREFIX", "SF_PARTITIONS"]) {
      const values = new Set(containers.map((c) => literal(c.container, shared)));
      expect([...values], shared).toHaveLength(1);
    }
    expect(literal(containers[0]?.container, "SF_PARTITIONS")).toBe("512");
    expect(literal(containers[0]?.container, "NATS_URL")).toBe("nats://sf-sidekick-forge-nats:4222");
    const natsNodes = num(at(find(manifests, "StatefulSet", "sf-sidekick-forge-nats"), "spec", "replicas"));
    for (const { workload, process, container } of containers) {
      if (process === "gateway") continue;
      expect(literal(container, "SF_STREAM_REPLICAS"), workload).toBe(String(natsNodes));
    }
  });

  it("helm - nats-server accepts the rendered NATS config and promtool the Prometheus config", async () => {
    const manifests = await template();
    const dir = mkdtempSync(path.join(tmpdir(), "sf-helm-"));
    const natsConf = data(manifests, "sf-sidekick-forge-nats", "nats.conf");
    expect(natsConf).toMatch(/sync_interval: always/);
    // Frozen clients are cut in tens of seconds, not the server's default minutes.
    expect(natsConf).toMatch(/^\s*ping_interval: "15s"$/m);
    expect(natsConf).toMatch(/^\s*ping_max: 2$/m);
    expect(natsConf.match(/nats-route:\/\//g)).toHaveLength(3);
    writeFileSync(path.join(dir, "nats.conf"), natsConf);
    const nats = await run(binaryPaths().natsServer, ["-c", path.join(dir, "nats.conf"), "-t"], {
      env: { POD_NAME: "sf-sidekick-forge-nats-0" },
    });
    expect(nats.stdout + nats.stderr).toMatch(/is valid/);

    const alerts = data(manifests, "sf-sidekick-forge-prometheus", "alerts.yml");
    writeFileSync(
      path.join(dir, "prometheus.yml"),
      data(manifests, "sf-sidekick-forge-prometheus", "prometheus.yml"),
    );
    writeFileSync(path.join(dir, "alerts.yml"), alerts);
    const checked = await run(promtool, ["check", "config", path.join(dir, "prometheus.yml")]);
    expect(checked.stdout).toMatch(/SUCCESS: \d+ rules found/);
    // The chart ships the same rules and dashboard that compose mounts, byte for byte.
    const files = path.join(CHART, "files");
    expect(alerts).toBe(readFileSync(path.join(files, "alerts.yml"), "utf8"));
    expect(data(manifests, "sf-sidekick-forge-grafana", "sidekick-forge.json")).toBe(
      readFileSync(path.join(files, "dashboard.json"), "utf8"),
    );
  });

  it("helm - an external NATS replaces the StatefulSet, and is required then", async () => {
    const manifests = await template("nats.enabled=false", "nats.url=nats://nats.example:4222");
    expect(manifests.some((m) => text(at(m, "kind")) === "StatefulSet")).toBe(false);
    for (const { container } of platformContainers(manifests)) {
      expect(literal(container, "NATS_URL")).toBe("nats://nats.example:4222");
    }
    await expect(template("nats.enabled=false")).rejects.toThrow(/nats.url is required/);
  });
});
