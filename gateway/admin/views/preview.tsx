/**
 * The agent preview: a text chat whose replies stream in token by token, and a voice call in the
 * page through livekit-client. The behaviour is admin.js's "agent preview" block, keyed on the
 * data attributes here; ids name every element a test or a browser script needs:
 *
 * - `#preview-chat[data-preview-chat]` (`data-state`: idle | streaming | done | error,
 *   `data-conversation-id` once the first turn is done), its log `#preview-transcript`
 *   (each message a `[data-message][data-role=user|assistant]`, the reply's text in
 *   `[data-message-text]`), the form `#preview-form` (`#preview-message`, `#preview-send`),
 *   `#preview-new-conversation`, the error box `#preview-error` (`data-code`) and `#preview-status`.
 * - `#preview-voice[data-preview-voice]` (`data-call-state`: idle | connecting | connected |
 *   ended | error, `data-room` once connected, `data-agent-joined` when the agent's audio is
 *   playing), `#preview-call-start`, `#preview-call-end`, `#preview-call-mute`,
 *   `#preview-call-status`, `#preview-call-error` (`data-code`), `#preview-call-transcript`,
 *   and `#preview-call-audio` where the agent's audio elements go.
 */
import { ASSET_PATHS } from "../assets.ts";
import { StatusBadge } from "./clients.tsx";
import { Breadcrumb, Layout, Notice, PageHeader } from "./layout.tsx";
import type { Viewer } from "./layout.tsx";

export interface PreviewAgent {
  slug: string;
  name: string;
  enabled: boolean;
  textEnabled: boolean;
  voiceEnabled: boolean;
}

export interface PreviewPageProps {
  viewer: Viewer;
  client: { id: string; name: string; status: string };
  agent: PreviewAgent;
  /** The tenant's LiveKit server origin (`wss://…`), null when LiveKit is not configured. */
  livekitOrigin: string | null;
}

export function previewPaths(clientId: string, slug: string) {
  const base = `/admin/clients/${clientId}/agents/${slug}/preview`;
  return { page: base, text: `${base}/text`, voice: `${base}/voice` };
}

function Flag({ on, label }: { on: boolean; label: string }) {
  return (
    <span class={on ? "badge bg-emerald-100 text-emerald-800" : "badge bg-slate-200 text-slate-700"}>
      {label} {on ? "on" : "off"}
    </span>
  );
}

export function PreviewPage({ viewer, client, agent, livekitOrigin }: PreviewPageProps) {
  const paths = previewPaths(client.id, agent.slug);
  return (
    <Layout title={`Preview ${agent.name}`} viewer={viewer} section="clients">
      <Breadcrumb
        trail={[
          { label: client.name, href: `/admin/clients/${client.id}` },
          { label: "Agents", href: `/admin/clients/${client.id}/agents` },
        ]}
      />
      <PageHeader title={`Preview: ${agent.name}`}>
        <a href={`/admin/clients/${client.id}/agents/${agent.slug}/edit`} class="btn-secondary">
          Edit agent
        </a>
      </PageHeader>
      <div class="mb-4 flex flex-wrap items-center gap-2 text-sm">
        <span class="font-mono text-xs">{agent.slug}</span>
        <StatusBadge status={client.status} />
        <Flag on={agent.enabled} label="Agent" />
        <Flag on={agent.textEnabled} label="Text" />
        <Flag on={agent.voiceEnabled} label="Voice" />
      </div>
      <p class="mb-4 text-sm text-slate-600">
        Turns run through the same dispatch as the API's triggers and are stored in the tenant's conversations
        under your console identity.
      </p>
      <div class="grid gap-4 lg:grid-cols-3">
        <section
          id="preview-chat"
          class="card space-y-3 lg:col-span-2"
          aria-labelledby="preview-chat-title"
          data-preview-chat
          data-state="idle"
          data-stream-url={paths.text}
        >
          <h2 id="preview-chat-title" class="text-base font-semibold">
            Text chat
          </h2>
          {agent.textEnabled && agent.enabled ? null : (
            <Notice kind="info">
              This agent does not take text chats now: a message answers with the reason.
            </Notice>
          )}
          <div
            id="preview-transcript"
            role="log"
            aria-live="polite"
            aria-label="Conversation"
            class="max-h-[28rem] min-h-40 space-y-2 overflow-y-auto rounded-md border border-slate-200 bg-slate-50 p-3"
          >
            <p class="text-sm text-slate-500" data-transcript-empty>
              No messages yet. Say something to the agent below.
            </p>
          </div>
          <div id="preview-error" class="hidden" role="alert" data-preview-error></div>
          <form id="preview-form" class="space-y-2" data-preview-form>
            <input type="hidden" name="conversation_id" id="preview-conversation-id" value="" />
            <label for="preview-message" class="field-label">
              Message
            </label>
            <textarea
              id="preview-message"
              name="message"
              rows={3}
              maxlength={32000}
              required
              class="field-input"
              placeholder="Ask the agent something"
            ></textarea>
            <p class="field-help">Enter sends; Shift+Enter starts a new line.</p>
            <div class="flex flex-wrap items-center gap-2">
              <button type="submit" id="preview-send" class="btn-primary">
                Send
              </button>
              <button type="button" id="preview-new-conversation" class="btn-secondary" data-preview-reset>
                New conversation
              </button>
              <span
                id="preview-status"
                class="text-xs text-slate-500"
                role="status"
                data-preview-status
              ></span>
            </div>
          </form>
        </section>
        <section
          id="preview-voice"
          class="card space-y-3"
          aria-labelledby="preview-voice-title"
          data-preview-voice
          data-call-state="idle"
          data-voice-url={paths.voice}
          data-livekit-configured={String(livekitOrigin !== null)}
        >
          <h2 id="preview-voice-title" class="text-base font-semibold">
            Voice call
          </h2>
          {livekitOrigin === null ? (
            <Notice kind="info">
              This client has no LiveKit server configured: a call answers SF_ERR_LIVEKIT_NOT_CONFIGURED. Add
              its LiveKit credentials on the client's edit page.
            </Notice>
          ) : (
            <p class="text-sm text-slate-600">
              Talks to the agent through <span class="font-mono text-xs break-all">{livekitOrigin}</span>;
              your browser asks for the microphone.
            </p>
          )}
          <div class="flex flex-wrap gap-2">
            <button type="button" id="preview-call-start" class="btn-primary" data-call-start>
              Start call
            </button>
            <button
              type="button"
              id="preview-call-mute"
              class="btn-secondary hidden"
              data-call-mute
              aria-pressed="false"
            >
              Mute
            </button>
            <button type="button" id="preview-call-end" class="btn-danger hidden" data-call-end>
              End call
            </button>
          </div>
          <p id="preview-call-status" class="text-sm text-slate-600" role="status" data-call-status>
            Not connected.
          </p>
          <div id="preview-call-error" class="hidden" role="alert" data-call-error></div>
          <div
            id="preview-call-transcript"
            role="log"
            aria-live="polite"
            aria-label="Call transcript"
            class="max-h-64 space-y-1 overflow-y-auto text-sm"
            data-call-transcript
          ></div>
          <div id="preview-call-audio" class="hidden" data-call-audio></div>
        </section>
      </div>
      <script src={ASSET_PATHS.livekit} defer></script>
    </Layout>
  );
}
