/**
 * Server-Sent Events framing (WHATWG "event stream" rules): lines end in LF, CR or CRLF; an
 * event ends at a blank line; its `data:` lines are joined with LF; comments (`:`) and other
 * fields are skipped. An event still open when the body ends is dropped, as the spec says, so
 * a body cut mid-event never yields half a payload.
 */

/** Yields the data of each complete event, in order. */
export async function* readSseData(
  body: ReadableStream<Uint8Array>,
): AsyncGenerator<string, void, undefined> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  let data: string[] = [];
  let sawData = false;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      buffer += done ? decoder.decode() : decoder.decode(value, { stream: true });
      for (;;) {
        const match = /\r\n|\r|\n/.exec(buffer);
        if (match === null) break;
        // A lone CR at the end of the buffer may be the first half of CRLF: wait for more.
        if (match[0] === "\r" && match.index === buffer.length - 1 && !done) break;
        const line = buffer.slice(0, match.index);
        buffer = buffer.slice(match.index + match[0].length);
        if (line === "") {
          if (sawData) yield data.join("\n");
          data = [];
          sawData = false;
          continue;
        }
        if (line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const field = colon === -1 ? line : line.slice(0, colon);
        let fieldValue = colon === -1 ? "" : line.slice(colon + 1);
        if (fieldValue.startsWith(" ")) fieldValue = fieldValue.slice(1);
        if (field === "data") {
          data.push(fieldValue);
          sawData = true;
        }
      }
      if (done) return;
    }
  } finally {
    reader.releaseLock();
  }
}
