/**
 * The prompt of one agent reply, built from the session's chat context: the instructions, the
 * context retrieved for the user's latest committed turn (once per turn, however many times the
 * library asks for a reply to it), and the conversation's last `windowTurns` exchanges plus the
 * new turn. Used by the agent's `llmNode`, so spoken and typed turns go through the same path.
 */
import { llm } from "@livekit/agents";
import { SfError } from "../../bus/index.ts";
import type { TurnContext } from "./session_types.ts";

export interface TurnPromptOptions {
  /** Turns of the conversation kept in the prompt (each a user and an assistant message). */
  windowTurns: number;
  retrieve?: (text: string, signal: AbortSignal) => Promise<TurnContext | null>;
  /** Aborts retrieval in flight (the session is ending). */
  signal: AbortSignal;
  /** Retrieval failed in a way that ends the session (a non-retryable coded error). */
  refused: (err: SfError) => void;
}

export class TurnPrompts {
  readonly #o: TurnPromptOptions;
  /** Retrieval per user message id: run once, awaited by every reply and by the recording. */
  readonly #contexts = new Map<string, Promise<TurnContext | null>>();
  /** How long retrieval took per user message id (ms), once it found context. */
  readonly #retrievalMs = new Map<string, number>();

  constructor(options: TurnPromptOptions) {
    this.#o = options;
  }

  /** The context retrieved for a user message (null without RAG or without text). */
  contextFor(message: llm.ChatMessage): Promise<TurnContext | null> {
    let found = this.#contexts.get(message.id);
    if (found !== undefined) return found;
    const text = message.textContent?.trim() ?? "";
    const retrieve = this.#o.retrieve;
    if (retrieve === undefined || text === "") found = Promise.resolve(null);
    else {
      const started = performance.now();
      found = retrieve(text, this.#o.signal).then((context) => {
        if (context !== null) this.#retrievalMs.set(message.id, performance.now() - started);
        return context;
      });
    }
    this.#contexts.set(message.id, found);
    return found;
  }

  /** How long retrieval took for a user message (ms); undefined when it did not run or found nothing. */
  retrievalMs(message: llm.ChatMessage): number | undefined {
    return this.#retrievalMs.get(message.id);
  }

  /** What retrieval gave the turn a reply answered, if it ran (never starts a retrieval). */
  retrieved(message: llm.ChatMessage): Promise<TurnContext | null> {
    return (this.#contexts.get(message.id) ?? Promise.resolve(null)).catch(() => null);
  }

  /** The chat context to send for a reply to `chatCtx`'s latest user turn. */
  async build(chatCtx: llm.ChatContext): Promise<llm.ChatContext> {
    const messages = chatCtx.items.filter((i): i is llm.ChatMessage => i.type === "message");
    const system = messages.filter((m) => m.role === "system" || m.role === "developer");
    const turns = messages.filter((m) => m.role === "user" || m.role === "assistant");
    const lastUser = turns.findLast((m) => m.role === "user");
    let context: TurnContext | null = null;
    if (lastUser !== undefined) {
      try {
        context = await this.contextFor(lastUser);
      } catch (err) {
        if (err instanceof SfError && !err.retryable) this.#o.refused(err);
        throw err;
      }
    }
    const items: llm.ChatItem[] = [...system];
    if (context?.message) items.push(llm.ChatMessage.create({ role: "system", content: context.message }));
    items.push(...turns.slice(-(this.#o.windowTurns * 2 + 1)));
    return new llm.ChatContext(items);
  }
}
