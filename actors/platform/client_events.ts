/**
 * Publishing `<prefix>.evt.client.<clientId>.<what>` to JetStream (stream SF_EVENTS): every host
 * drops the handles it cached for the client, every gateway the API keys it verified.
 */
import { jetstream } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { BusErrorCodes, encodeBody, SfError } from "../../bus/index.ts";
import type { Subjects } from "../../bus/index.ts";

export type ClientEventPublisher = (
  clientId: string,
  what: string,
  data: Record<string, unknown>,
) => Promise<void>;

/** How long a publish waits for the stream's acknowledgement. */
const PUBLISH_TIMEOUT_MS = 2000;

export function clientEventPublisher(nc: NatsConnection, subjects: Subjects): ClientEventPublisher {
  const js = jetstream(nc);
  return async (clientId, what, data) => {
    try {
      await js.publish(subjects.clientEvent(clientId, what), encodeBody(data), {
        timeout: PUBLISH_TIMEOUT_MS,
      });
    } catch (err) {
      throw new SfError(BusErrorCodes.UNAVAILABLE, `the ${what} event of a client could not be published`, {
        cause: err,
        retryable: true,
        details: { clientId, event: what },
      });
    }
  };
}
