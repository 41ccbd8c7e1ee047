/**
 * What the provider clients report about each HTTP call, and its Prometheus form. The clients see
 * only the `ProviderMetrics` interface (passed in `ProviderClientOptions.metrics`), so a test can
 * give them a registry of its own; the worker passes one built on its `/metrics` registry.
 *
 * Labels stay bounded: `provider` is a name from the registry (a client exists only for a known
 * provider), `kind` one of four, `outcome` one of three, and `code` an `SF_ERR_*` code from our
 * own error classes (anything else is reported as `SF_ERR_UNKNOWN`).
 */
import { Counter, Histogram } from "prom-client";
import type { Registry } from "prom-client";
import type { ProviderKind } from "./registry.ts";

/**
 * `ok`: the answer was read in full. `error`: the call failed (its code is counted in
 * `sf_provider_errors_total`). `aborted`: the caller gave up (its signal fired, or it stopped
 * reading a stream): not the provider's failure, so it is not counted as an error.
 */
export type ProviderCallOutcome = "ok" | "error" | "aborted";

export interface ProviderCallReport {
  readonly provider: string;
  readonly kind: ProviderKind;
  readonly outcome: ProviderCallOutcome;
  /** From sending the request to the end of the answer (a streamed answer: its last token). */
  readonly seconds: number;
  /** The coded error's code, for `error` and `aborted`. */
  readonly code?: string;
}

export interface ProviderMetrics {
  /** One provider HTTP call ended. */
  callEnded(report: ProviderCallReport): void;
  /** A streamed answer's first token arrived `seconds` after the request was sent. */
  firstToken(provider: string, kind: ProviderKind, seconds: number): void;
}

/** Reports nothing: the default when no metrics are passed. */
export const NO_PROVIDER_METRICS: ProviderMetrics = Object.freeze({
  callEnded: () => undefined,
  firstToken: () => undefined,
});

const CODE = /^SF_ERR_[A-Z0-9_]{1,64}$/;

/** The `code` label: an `SF_ERR_*` code, else `SF_ERR_UNKNOWN` (keeps the label set bounded). */
export function errorCodeLabel(code: string | undefined): string {
  return code !== undefined && CODE.test(code) ? code : "SF_ERR_UNKNOWN";
}

export interface PrometheusProviderMetrics extends ProviderMetrics {
  readonly requestDuration: Histogram<"provider" | "kind" | "outcome">;
  readonly errors: Counter<"provider" | "kind" | "code">;
  readonly firstTokenDuration: Histogram<"provider" | "kind">;
}

/**
 * `sf_provider_request_duration_seconds{provider,kind,outcome}`,
 * `sf_provider_errors_total{provider,kind,code}` and `sf_provider_first_token_seconds{provider,kind}`
 * on `registry`.
 */
export function createProviderMetrics(registry: Registry): PrometheusProviderMetrics {
  const requestDuration = new Histogram({
    name: "sf_provider_request_duration_seconds",
    help: "Provider HTTP calls, from the request to the end of the answer (a streamed LLM answer: its last token), by provider, kind and outcome (ok, error, aborted by the caller)",
    labelNames: ["provider", "kind", "outcome"],
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120],
    registers: [registry],
  });
  const errors = new Counter({
    name: "sf_provider_errors_total",
    help: "Provider HTTP calls that failed, by provider, kind and error code (SF_ERR_PROVIDER_*); each retry attempt counts",
    labelNames: ["provider", "kind", "code"],
    registers: [registry],
  });
  const firstTokenDuration = new Histogram({
    name: "sf_provider_first_token_seconds",
    help: "Streamed answers (LLM): time from the request to the first token, by provider and kind",
    labelNames: ["provider", "kind"],
    buckets: [0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 15],
    registers: [registry],
  });
  return {
    requestDuration,
    errors,
    firstTokenDuration,
    callEnded(report) {
      const { provider, kind, outcome } = report;
      requestDuration.observe({ provider, kind, outcome }, report.seconds);
      if (outcome === "error") errors.inc({ provider, kind, code: errorCodeLabel(report.code) });
    },
    firstToken(provider, kind, seconds) {
      firstTokenDuration.observe({ provider, kind }, seconds);
    },
  };
}
