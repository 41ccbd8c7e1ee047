/** The providers and models SEED_CONTRACT.md names, by kind: the console's dropdowns and checks. */

export type ProviderKindName = "llm" | "stt" | "tts" | "embeddings";

export interface ProviderChoice {
  name: string;
  /** Models SEED_CONTRACT.md names for it; the first is the provider's default. */
  models: readonly string[];
  /** Whether the worker picks a model when the agent names none. */
  hasDefault: boolean;
}

/** The providers and models of SEED_CONTRACT.md ("Provider configuration"). */
export const PROVIDER_CATALOG: Readonly<Record<ProviderKindName, readonly ProviderChoice[]>> = {
  llm: [
    { name: "groq", models: ["llama-3.3-70b-versatile"], hasDefault: true },
    { name: "openai", models: [], hasDefault: false },
    { name: "cerebras", models: [], hasDefault: false },
    { name: "deepinfra", models: [], hasDefault: false },
  ],
  stt: [
    { name: "deepgram", models: ["nova-3"], hasDefault: true },
    { name: "cartesia", models: [], hasDefault: true },
  ],
  tts: [
    { name: "elevenlabs", models: ["eleven_turbo_v2_5"], hasDefault: true },
    { name: "cartesia", models: ["sonic-3"], hasDefault: true },
  ],
  embeddings: [
    { name: "siliconflow", models: ["Qwen/Qwen3-Embedding-0.6B"], hasDefault: true },
    { name: "openai", models: [], hasDefault: true },
    { name: "novita", models: [], hasDefault: false },
    { name: "jina", models: [], hasDefault: true },
  ],
};
