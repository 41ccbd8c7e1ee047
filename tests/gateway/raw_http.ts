/** Raw HTTP/1.1 over a TCP socket, for what fetch cannot do: half bodies, oversized declarations. */
import { connect } from "node:net";
import type { Socket } from "node:net";

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** True when the server closed the connection after the response. */
  closed: boolean;
}

/** Connects, or rejects with the socket error (ECONNREFUSED when nobody listens). */
export function openSocket(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.off("error", reject);
      resolve(socket);
    });
    socket.once("error", reject);
  });
}

/** Sends `request` (written in the given pieces) and reads one response and whether the socket then closed. */
export async function rawRequest(
  port: number,
  pieces: readonly (string | Buffer)[],
  { head = false, signal }: { head?: boolean; signal?: AbortSignal } = {},
): Promise<RawResponse> {
  const socket = await openSocket(port);
  return new Promise((resolve, reject) => {
    // Aborting gives up on the answer: the socket is destroyed and the promise rejects.
    const onAbort = (): void => {
      reject(new Error("no response before the request was aborted", { cause: signal?.reason }));
      socket.destroy();
    };
    if (signal?.aborted === true) onAbort();
    signal?.addEventListener("abort", onAbort, { once: true });
    socket.once("close", () => signal?.removeEventListener("abort", onAbort));
    let data = Buffer.alloc(0);
    let parsed: Omit<RawResponse, "closed"> | undefined;
    const tryParse = (): void => {
      const end = data.indexOf("\r\n\r\n");
      if (end === -1 || parsed !== undefined) return;
      const [statusLine = "", ...lines] = data.subarray(0, end).toString("latin1").split("\r\n");
      const headers: Record<string, string> = {};
      for (const line of lines) {
        const i = line.indexOf(":");
        headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
      }
      // A HEAD response announces a length but carries no body.
      const length = head ? 0 : Number(headers["content-length"] ?? "0");
      if (data.length - end - 4 < length) return;
      parsed = {
        status: Number(statusLine.split(" ")[1]),
        headers,
        body: data.subarray(end + 4, end + 4 + length).toString("utf8"),
      };
    };
    socket.on("data", (chunk: Buffer) => {
      data = Buffer.concat([data, chunk]);
      tryParse();
    });
    socket.on("error", (err) => {
      // A reset after a complete response still counts as a close.
      if (parsed !== undefined) resolve({ ...parsed, closed: true });
      else reject(err);
    });
    socket.on("close", () => {
      if (parsed !== undefined) resolve({ ...parsed, closed: true });
      else reject(new Error(`connection closed before a full response: ${JSON.stringify(data.toString())}`));
    });
    // Resolve without waiting for a close that a kept-alive connection never sends.
    socket.on("data", () => {
      if (parsed !== undefined && parsed.headers["connection"] !== "close") {
        resolve({ ...parsed, closed: false });
        socket.destroy();
      }
    });
    for (const piece of pieces) socket.write(piece);
  });
}

/** Sends a request head and part of its body, then closes the socket without reading. */
export async function sendAndVanish(port: number, text: string): Promise<void> {
  const socket = await openSocket(port);
  await new Promise<void>((resolve, reject) => socket.write(text, (err) => (err ? reject(err) : resolve())));
  socket.destroy();
}

/** One kept-alive connection: several requests in turn on the same socket. */
export class RawConnection {
  readonly #socket: Socket;
  #data = Buffer.alloc(0);
  #closed = false;
  #wake: (() => void) | undefined;

  private constructor(socket: Socket) {
    this.#socket = socket;
    socket.on("data", (chunk: Buffer) => {
      this.#data = Buffer.concat([this.#data, chunk]);
      this.#wake?.();
    });
    socket.on("close", () => {
      this.#closed = true;
      this.#wake?.();
    });
    socket.on("error", () => {
      this.#closed = true;
      this.#wake?.();
    });
  }

  static async open(port: number): Promise<RawConnection> {
    return new RawConnection(await openSocket(port));
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Sends one request and reads its response (bodies by Content-Length only). */
  async request(text: string): Promise<Omit<RawResponse, "closed">> {
    this.#socket.write(text);
    for (;;) {
      const end = this.#data.indexOf("\r\n\r\n");
      if (end !== -1) {
        const [statusLine = "", ...lines] = this.#data.subarray(0, end).toString("latin1").split("\r\n");
        const headers: Record<string, string> = {};
        for (const line of lines) {
          const i = line.indexOf(":");
          headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
        }
        const length = Number(headers["content-length"] ?? "0");
        if (this.#data.length - end - 4 >= length) {
          const body = this.#data.subarray(end + 4, end + 4 + length).toString("utf8");
          this.#data = this.#data.subarray(end + 4 + length);
          return { status: Number(statusLine.split(" ")[1]), headers, body };
        }
      }
      if (this.#closed) throw new Error("connection closed before a full response");
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
      });
    }
  }

  /** Resolves once the server has closed the connection. */
  async waitClosed(): Promise<void> {
    while (!this.#closed) {
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
      });
    }
  }

  destroy(): void {
    this.#socket.destroy();
  }
}
