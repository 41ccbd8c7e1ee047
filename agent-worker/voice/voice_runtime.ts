/**
 * What runs the agent in a room on `@livekit/agents`, as one module loaded on demand
 * (`loadVoiceRuntime()` in the folder's index): importing the library takes over a second, which
 * processes that never run a voice session should not pay.
 */
export { startAgentRuntime } from "./agent_runtime.ts";
export type { AgentRuntime, AgentRuntimeOptions } from "./agent_runtime.ts";
export { TurnPrompts } from "./turn_prompt.ts";
export type { TurnPromptOptions } from "./turn_prompt.ts";
export { UsersAudioInput, SPEAKER_USERDATA_KEY, speakerOf } from "./users_audio_input.ts";
export type { UsersAudioInputOptions } from "./users_audio_input.ts";
export { EnergyVadPlugin } from "./vad_plugin.ts";
export type { EnergyVadPluginOptions } from "./vad_plugin.ts";
export {
  ProviderCallError,
  ProviderLlm,
  ProviderStt,
  ProviderTts,
  chatMessagesOf,
} from "./provider_plugins.ts";
export type { ProviderReports } from "./provider_plugins.ts";
export { ProviderLiveStt } from "./live_stt_plugin.ts";
export type { ProviderLiveSttOptions } from "./live_stt_plugin.ts";
