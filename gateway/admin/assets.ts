/**
 * The console's static files, all served by the gateway (nothing from a CDN): the stylesheet
 * Tailwind compiled at build time (`npm run build`), HTMX and the LiveKit browser SDK from their
 * npm packages, and the console's own script. Each URL carries the file's content hash, so a page always loads the files it was
 * rendered with and browsers may cache them for good.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { ConfigError } from "../../actors/index.ts";

export interface StaticAsset {
  /** The URL path pages link to: `/admin/static/<name>?v=<hash>`. */
  readonly href: string;
  readonly name: string;
  readonly hash: string;
  readonly contentType: string;
  readonly body: string;
}

const require = createRequire(import.meta.url);

function load(name: string, file: string, contentType: string, missing: string): StaticAsset {
  let body: string;
  try {
    body = readFileSync(file, "utf8");
  } catch (err) {
    throw new ConfigError(`the console's ${name} is missing (${missing})`, { cause: err });
  }
  const hash = createHash("sha256").update(body).digest("hex").slice(0, 16);
  return { href: `/admin/static/${name}?v=${hash}`, name, hash, contentType, body };
}

let loaded: ReadonlyMap<string, StaticAsset> | undefined;

/** The console's assets by file name, read once. Throws when the stylesheet was never built. */
export function adminAssets(): ReadonlyMap<string, StaticAsset> {
  if (loaded !== undefined) return loaded;
  const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));
  const list = [
    load("admin.css", here("./public/admin.css"), "text/css; charset=utf-8", "run `npm run build`"),
    load(
      "htmx.min.js",
      require.resolve("htmx.org/dist/htmx.min.js"),
      "text/javascript; charset=utf-8",
      "reinstall the htmx.org package",
    ),
    load(
      // The LiveKit browser SDK (UMD build: `window.LivekitClient`), for the agent preview's voice call.
      "livekit-client.umd.js",
      require.resolve("livekit-client"),
      "text/javascript; charset=utf-8",
      "reinstall the livekit-client package",
    ),
    load(
      "admin.js",
      here("./public/admin.js"),
      "text/javascript; charset=utf-8",
      "the checkout is incomplete",
    ),
  ];
  loaded = new Map(list.map((a) => [a.name, a]));
  return loaded;
}

function href(name: string): string {
  const asset = adminAssets().get(name);
  if (asset === undefined) throw new Error(`no console asset ${name}`);
  return asset.href;
}

/** What pages link to. */
export const ASSET_PATHS = {
  get css(): string {
    return href("admin.css");
  },
  get htmx(): string {
    return href("htmx.min.js");
  },
  get js(): string {
    return href("admin.js");
  },
  get livekit(): string {
    return href("livekit-client.umd.js");
  },
};
