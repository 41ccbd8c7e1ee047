/**
 * A real browser for the console's tests: Debian's Chromium (/usr/bin/chromium, installed by
 * `deploy/services.sh up`) driven by playwright-core; no test tool ever downloads a browser.
 *
 * One harness per test file: `BrowserHarness.launch({ suite })` starts Chromium headless with
 * the flags this machine's closed network needs (a fresh profile: Playwright gives each launch a
 * new temporary --user-data-dir and removes it at close), `newContext()` opens an isolated
 * context (own cookies), `shoot()` saves a screenshot of a page at desktop and at phone width
 * under .sidekick/test-output/screenshots/<suite>/, and every HTML, HTMX, JSON or event-stream
 * response the browser receives is kept (`responses()`) so the suite can prove that no secret
 * was ever served. `await using` (or `close()`) shuts the browser down.
 */
import { existsSync } from "node:fs";
import { mkdir, rm } from "node:fs/promises";
import path from "node:path";
import { chromium } from "playwright-core";
import type { Browser, BrowserContext, Page, Response } from "playwright-core";
import { repoRoot } from "./services.ts";

export const CHROMIUM_PATH = "/usr/bin/chromium";

/**
 * Without the background-networking flags Chromium keeps dialling Google's hosts, which this
 * machine's closed network refuses; --no-sandbox because the suites run as root.
 */
export const CHROMIUM_ARGS: readonly string[] = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

export const DESKTOP = { width: 1280, height: 800 } as const;
export const PHONE = { width: 390, height: 844 } as const;

/** Content types whose bodies are kept for the secret scan (pages, fragments, API answers). */
const KEPT_TYPES = /^(text\/html|application\/json|application\/problem\+json|text\/plain)\b/;
/** Event streams are kept too, read as they arrive (see `#tapStreams`). */
const EVENT_STREAM = "text/event-stream";

export interface RecordedResponse {
  url: string;
  method: string;
  status: number;
  contentType: string;
  body: string;
  /** An event stream that ended in a network error (e.g. net::ERR_ABORTED) after this body. */
  error?: string;
}

/** A kept response whose body could not be read: the scan did not cover it. */
export interface UnreadResponse {
  url: string;
  status: number;
  reason: string;
}

/** What Chromium had buffered of an event stream when recording began. */
type StreamHead = { bytes: Buffer } | { error: string };

export interface BrowserHarnessOptions {
  /** The test file's name: the screenshots folder under .sidekick/test-output/screenshots/. */
  suite: string;
  /** Relative URLs of `page.goto` resolve against it (the gateway's http://127.0.0.1:<port>). */
  baseURL: string;
}

/** Where `suite`'s screenshots go: <repo>/.sidekick/test-output/screenshots/<suite>. */
export function screenshotDir(suite: string): string {
  return path.join(repoRoot(), ".sidekick", "test-output", "screenshots", suite);
}

export class BrowserHarness implements AsyncDisposable {
  readonly #recorded: RecordedResponse[] = [];
  readonly #unread: UnreadResponse[] = [];
  readonly #pending = new Set<Promise<void>>();
  /** Event streams that started and have not ended yet (url by DevTools request id). */
  readonly #openStreams = new Map<string, string>();
  readonly #contexts = new Set<BrowserContext>();
  readonly #shots: string[] = [];
  #closed = false;

  private constructor(
    readonly browser: Browser,
    readonly options: BrowserHarnessOptions,
    readonly screenshots: string,
  ) {}

  static async launch(options: BrowserHarnessOptions): Promise<BrowserHarness> {
    if (!existsSync(CHROMIUM_PATH)) {
      throw new Error(`${CHROMIUM_PATH} is missing: run \`bash deploy/services.sh up\` (npm test does this)`);
    }
    const dir = screenshotDir(options.suite);
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
    const browser = await chromium.launch({
      executablePath: CHROMIUM_PATH,
      headless: true,
      args: [...CHROMIUM_ARGS],
    });
    return new BrowserHarness(browser, options, dir);
  }

  /** The Chromium version (e.g. "156.0.8078.108"). */
  get version(): string {
    return this.browser.version();
  }

  /** An isolated context (its own cookie jar) at desktop size, recording what it receives. */
  async newContext(): Promise<BrowserContext> {
    const context = await this.browser.newContext({
      baseURL: this.options.baseURL,
      viewport: { ...DESKTOP },
      serviceWorkers: "block",
    });
    context.on("response", (res) => this.#record(res));
    context.on("page", (page) => this.#track(this.#tapStreams(page)));
    this.#contexts.add(context);
    return context;
  }

  /** A new page of `context`, its event streams recorded from the start. */
  async newPage(context: BrowserContext): Promise<Page> {
    const page = await context.newPage();
    await this.settle();
    return page;
  }

  #track(work: Promise<void>): void {
    this.#pending.add(work);
    void work.finally(() => this.#pending.delete(work));
  }

  /**
   * Records the event streams `page` receives as the bytes arrive, through its own DevTools
   * session: Chromium keeps no body for a stream that the page consumed chunk by chunk, so
   * `response.body()` cannot read one afterwards. `Network.streamResourceContent` hands over what
   * was buffered so far, and from then on each `dataReceived` event carries its bytes.
   */
  async #tapStreams(page: Page): Promise<void> {
    const cdp = await page.context().newCDPSession(page);
    const methods = new Map<string, string>();
    const streams = new Map<
      string,
      { url: string; method: string; status: number; head: Promise<StreamHead>; chunks: Buffer[] }
    >();
    cdp.on("Network.requestWillBeSent", (e) => methods.set(e.requestId, e.request.method));
    cdp.on("Network.responseReceived", (e) => {
      if (e.response.mimeType !== EVENT_STREAM) return;
      // Settled either way (a failure is reported when the stream ends, not left unhandled).
      const head = cdp.send("Network.streamResourceContent", { requestId: e.requestId }).then(
        (r): StreamHead => ({ bytes: Buffer.from(r.bufferedData, "base64") }),
        (err: unknown): StreamHead => ({ error: err instanceof Error ? err.message : String(err) }),
      );
      streams.set(e.requestId, {
        url: e.response.url,
        method: methods.get(e.requestId) ?? "",
        status: e.response.status,
        head,
        chunks: [],
      });
      this.#openStreams.set(e.requestId, e.response.url);
    });
    cdp.on("Network.dataReceived", (e) => {
      const stream = streams.get(e.requestId);
      if (stream !== undefined && e.data !== undefined) stream.chunks.push(Buffer.from(e.data, "base64"));
    });
    const end = (requestId: string, failure?: string) => {
      methods.delete(requestId);
      const stream = streams.get(requestId);
      if (stream === undefined) return;
      streams.delete(requestId);
      this.#openStreams.delete(requestId);
      const { url, method, status } = stream;
      this.#track(
        stream.head.then((head) => {
          if ("error" in head) {
            this.#unread.push({ url, status, reason: head.error });
            return;
          }
          // Every byte the browser received is here, also when the stream ended in an error.
          const body = Buffer.concat([head.bytes, ...stream.chunks]).toString("utf8");
          this.#recorded.push({
            url,
            method,
            status,
            contentType: EVENT_STREAM,
            body,
            ...(failure === undefined ? {} : { error: failure }),
          });
        }),
      );
    };
    cdp.on("Network.loadingFinished", (e) => end(e.requestId));
    cdp.on("Network.loadingFailed", (e) => end(e.requestId, e.errorText));
    await cdp.send("Network.enable");
  }

  #record(res: Response): void {
    const status = res.status();
    const contentType = res.headers()["content-type"] ?? "";
    // Redirects and empty answers have no body to read.
    if ((status >= 300 && status < 400) || status === 204 || !KEPT_TYPES.test(contentType)) return;
    const url = res.url();
    const method = res.request().method();
    this.#track(
      res.body().then(
        (body) => {
          this.#recorded.push({ url, method, status, contentType, body: body.toString("utf8") });
        },
        (err: unknown) => {
          this.#unread.push({ url, status, reason: err instanceof Error ? err.message : String(err) });
        },
      ),
    );
  }

  /** Waits until every body already received has been read. */
  async settle(): Promise<void> {
    while (this.#pending.size > 0) await Promise.all([...this.#pending]);
  }

  /** Every kept response so far (after their bodies are read). */
  async responses(): Promise<readonly RecordedResponse[]> {
    await this.settle();
    return this.#recorded;
  }

  /**
   * Kept responses whose bodies could not be read (so the scan could not cover them), and event
   * streams that have not ended.
   */
  async unread(): Promise<readonly UnreadResponse[]> {
    await this.settle();
    const open = [...this.#openStreams.values()].map((url) => ({
      url,
      status: 200,
      reason: "stream not ended",
    }));
    return [...this.#unread, ...open];
  }

  /**
   * Opens `path` in `page`. The bodies already received are read first: Chromium drops a page's
   * bodies once it navigates away, and the secret scan must see every one.
   */
  async visit(page: Page, path: string): Promise<void> {
    await this.settle();
    await page.goto(path);
  }

  /**
   * Clicks (through `click`) a link or button and waits until the page it leads to has loaded;
   * `target` is that page's path and query (a string, exactly, or a RegExp). A navigation, not
   * the URL alone, ends the wait, so a form that leads back to its own URL is waited for too.
   * The bodies already received are read first, as in `visit`.
   */
  async follow(page: Page, click: () => Promise<void>, target: RegExp | string): Promise<void> {
    const matches = (url: string) => {
      const u = new URL(url);
      const here = `${u.pathname}${u.search}`;
      return typeof target === "string" ? here === target : target.test(here);
    };
    await this.settle();
    await Promise.all([
      page.waitForEvent("framenavigated", {
        predicate: (frame) => frame === page.mainFrame() && matches(frame.url()),
      }),
      click(),
    ]);
    await page.waitForLoadState("load");
  }

  /** The screenshot files written so far, relative to the repository. */
  get shots(): readonly string[] {
    return this.#shots;
  }

  /**
   * Saves `page` (full length) at desktop width and at phone width (390x844) as
   * <suite>/<step>.desktop.png and <step>.phone.png, then restores the page's size.
   */
  async shoot(page: Page, step: string): Promise<void> {
    if (!/^[a-z0-9][a-z0-9_-]*$/.test(step)) throw new Error(`screenshot step "${step}" must be a slug`);
    const before = page.viewportSize() ?? { ...DESKTOP };
    for (const [name, size] of [
      ["desktop", DESKTOP],
      ["phone", PHONE],
    ] as const) {
      await page.setViewportSize({ ...size });
      const file = path.join(this.screenshots, `${step}.${name}.png`);
      await page.screenshot({ path: file, fullPage: true, animations: "disabled" });
      this.#shots.push(path.relative(repoRoot(), file));
    }
    await page.setViewportSize(before);
  }

  /** Reads the last bodies, then closes every context and the browser (its profile goes too). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    try {
      await this.settle();
      for (const context of this.#contexts) await context.close();
    } finally {
      await this.browser.close();
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/**
 * Which of `secrets` (label → value) occur in which recorded body: `{ url, secret }` pairs that
 * name the label, never the value, so a failing assertion does not print the secret.
 */
export function secretsIn(
  responses: readonly RecordedResponse[],
  secrets: Readonly<Record<string, string>>,
): Array<{ url: string; secret: string }> {
  const found: Array<{ url: string; secret: string }> = [];
  for (const res of responses) {
    for (const [label, value] of Object.entries(secrets)) {
      if (value !== "" && res.body.includes(value)) found.push({ url: res.url, secret: label });
    }
  }
  return found;
}
