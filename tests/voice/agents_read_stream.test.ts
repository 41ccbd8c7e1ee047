// `@livekit/agents`' readStream(), which AudioRecognition pumps every user audio frame through,
// must not keep what it read while its signal stays unaborted (a voice session's whole life).
// 1.9.0 raced each read against one long-lived abort promise and so kept every frame until the
// session closed (livekit/agents-js#2046); deploy/patch_dependencies.mjs fixes it at install.
import { queryObjects } from "node:v8";
import { readStream } from "@livekit/agents";
import { describe, expect, it } from "vitest";

/** What the stream carries; counted after a full collection (queryObjects runs one). */
class Chunk {
  readonly payload = new Uint8Array(1024);
}

describe("voice - readStream of @livekit/agents", () => {
  it("a stream read under a signal that is never aborted keeps none of the chunks it delivered", async () => {
    const total = 500;
    let sent = 0;
    const stream = new ReadableStream<Chunk>({
      pull(controller) {
        if (sent === total) controller.close();
        else {
          sent += 1;
          controller.enqueue(new Chunk());
        }
      },
    });
    const session = new AbortController();
    let received = 0;
    let liveWhileReading = 0;
    for await (const chunk of readStream(stream, session.signal)) {
      expect(chunk).toBeInstanceOf(Chunk);
      received += 1;
      // Past the middle, with the stream still open and the signal still live: what was read
      // before is garbage unless readStream keeps it.
      if (received === total / 2) liveWhileReading = queryObjects(Chunk, { format: "count" });
    }
    expect(received).toBe(total);
    expect(liveWhileReading).toBeLessThanOrEqual(2);
    // Aborting still ends a read that waits.
    const never = new ReadableStream<Chunk>();
    const waiting = readStream(never, session.signal)[Symbol.asyncIterator]().next();
    session.abort();
    await expect(waiting).resolves.toEqual({ done: true, value: undefined });
  });
});
