/** The shape of a platform operation and what every operation module is built with. */
import type { Logger } from "pino";
import type { RequestMeta } from "../../bus/index.ts";
import type { PlatformStore } from "../store/index.ts";
import type { ClientEventPublisher } from "./client_events.ts";

export type PlatformOp = (body: unknown, meta: RequestMeta) => Promise<unknown>;

export interface PlatformOpDeps {
  store: PlatformStore;
  publish: ClientEventPublisher;
  log: Logger;
}
