/*
 * Copy buttons: `<button data-copy="#element-id">` copies that element's text (a `data-copy` value
 * without `#` is copied as it is), then shows "Copied" on the button and in the nearest
 * `[data-copy-status]` (an aria-live region). Without the Clipboard API (a page not served over
 * HTTPS or localhost) the text is selected instead, for Ctrl+C.
 */
(() => {
  const COPIED_CLASSES = ["border-emerald-500", "text-emerald-700"];

  const selectText = (element) => {
    if (element === null) return;
    const range = document.createRange();
    range.selectNodeContents(element);
    const selection = window.getSelection();
    if (selection === null) return;
    selection.removeAllRanges();
    selection.addRange(range);
  };

  const announce = (button, message, copied) => {
    let scope = button.parentElement;
    while (scope !== null && scope.querySelector("[data-copy-status]") === null) scope = scope.parentElement;
    const status = scope?.querySelector("[data-copy-status]") ?? null;
    if (status !== null) status.textContent = message;
    if (!copied) return;
    if (button.dataset.copyLabel === undefined) button.dataset.copyLabel = button.textContent ?? "";
    button.textContent = "Copied";
    button.classList.add(...COPIED_CLASSES);
    window.clearTimeout(Number(button.dataset.copyTimer ?? "0"));
    button.dataset.copyTimer = String(
      window.setTimeout(() => {
        button.textContent = button.dataset.copyLabel ?? "Copy";
        button.classList.remove(...COPIED_CLASSES);
      }, 2000),
    );
  };

  document.addEventListener("click", (event) => {
    const target = event.target;
    const button = target instanceof Element ? target.closest("[data-copy]") : null;
    if (button === null) return;
    const spec = button.getAttribute("data-copy") ?? "";
    const source = spec.startsWith("#") ? document.querySelector(spec) : null;
    const text = spec.startsWith("#") ? (source?.textContent ?? "").trim() : spec;
    if (text === "") return;
    if (navigator.clipboard === undefined || !window.isSecureContext) {
      selectText(source);
      announce(button, "Selected: press Ctrl+C (⌘C on a Mac) to copy.", false);
      return;
    }
    navigator.clipboard.writeText(text).then(
      () => announce(button, "Copied to the clipboard.", true),
      () => {
        selectText(source);
        announce(
          button,
          "The browser refused to copy: the text is selected, press Ctrl+C (⌘C) to copy.",
          false,
        );
      },
    );
  });
})();

/*
 * File size limits: `<input type="file" data-max-bytes="N">` marks a chosen file larger than N
 * bytes invalid, so neither the browser nor HTMX (which validates a form before sending it)
 * uploads it only to have the gateway refuse it.
 */
(() => {
  const mib = (bytes) => `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
  document.addEventListener("change", (event) => {
    const input = event.target;
    if (!(input instanceof HTMLInputElement) || input.type !== "file" || input.dataset.maxBytes === undefined)
      return;
    const max = Number(input.dataset.maxBytes);
    const file = input.files?.[0];
    const tooLarge = file !== undefined && Number.isFinite(max) && file.size > max;
    input.setCustomValidity(tooLarge ? `This file has ${mib(file.size)}; the limit is ${mib(max)}.` : "");
    if (tooLarge) input.reportValidity();
  });
})();

/*
 * Agent preview (views/preview.tsx). Text: the form `[data-preview-form]` posts each message to
 * its section's `data-stream-url` with the session's CSRF token (from <body hx-headers>) and
 * appends the reply's tokens to `#preview-transcript` as the Server-Sent Events arrive, keeping
 * the conversation id (`#preview-conversation-id`) across turns. Voice: `[data-call-start]` asks
 * `data-voice-url` for a voice session (dispatched like a voice trigger), joins its room with
 * livekit-client (window.LivekitClient), publishes the microphone and plays the agent's audio.
 * Errors show their code and message; `data-state` / `data-call-state` say where things are.
 */
(() => {
  const csrfToken = () => {
    try {
      const headers = JSON.parse(document.body.getAttribute("hx-headers") ?? "{}");
      return typeof headers["X-CSRF-Token"] === "string" ? headers["X-CSRF-Token"] : "";
    } catch {
      // A page without the session's headers (the login page) has no token to send.
      return "";
    }
  };

  const post = (url, fields, accept) =>
    fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-CSRF-Token": csrfToken(),
        // Console errors then come back as a small fragment, and an ended session as HX-Redirect.
        "HX-Request": "true",
        Accept: accept,
      },
      body: new URLSearchParams(fields).toString(),
    });

  /** An ended session: the console answers HX-Redirect to the login page. */
  const followRedirect = (res) => {
    const to = res.headers.get("hx-redirect");
    if (to === null || !to.startsWith("/")) return false;
    window.location.assign(to);
    return true;
  };

  /** The code and message of a failed answer (a console error fragment, a JSON envelope, or anything else). */
  const errorOf = async (res) => {
    const type = res.headers.get("content-type") ?? "";
    const text = await res.text();
    if (type.includes("application/json")) {
      try {
        const e = JSON.parse(text).error;
        if (e && typeof e.code === "string") return { code: e.code, message: String(e.message ?? "") };
      } catch (err) {
        return { code: `HTTP ${res.status}`, message: err instanceof Error ? err.message : "bad JSON" };
      }
    }
    if (type.includes("text/html")) {
      const doc = new DOMParser().parseFromString(text, "text/html");
      const message = doc.querySelector("p.font-medium")?.textContent?.trim() ?? "";
      const code = (doc.querySelector("p.font-mono")?.textContent ?? "").split("·")[0]?.trim() ?? "";
      if (message !== "") return { code: code || `HTTP ${res.status}`, message };
    }
    return { code: `HTTP ${res.status}`, message: "The request failed." };
  };

  const showError = (box, err) => {
    const message = document.createElement("p");
    message.className = "font-medium";
    message.textContent = err.message;
    const code = document.createElement("p");
    code.className = "mt-1 font-mono text-xs";
    code.textContent = err.code;
    box.replaceChildren(message, code);
    box.dataset.code = err.code;
    box.className = "rounded-md border border-red-200 bg-red-50 px-4 py-3 text-sm text-red-800";
  };

  const clearError = (box) => {
    box.replaceChildren();
    box.className = "hidden";
    delete box.dataset.code;
  };

  /** Reads `data:` events of a Server-Sent Events body as JSON, in order. */
  const readEvents = async (res, onEvent) => {
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let cut = buffer.indexOf("\n\n");
      while (cut >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        const data = block
          .split("\n")
          .filter((line) => line.startsWith("data:"))
          .map((line) => line.slice(5).trimStart())
          .join("\n");
        if (data !== "") onEvent(JSON.parse(data));
        cut = buffer.indexOf("\n\n");
      }
    }
  };

  const EMPTY_NOTE = "No messages yet. Say something to the agent below.";

  const addMessage = (log, role, text) => {
    log.querySelector("[data-transcript-empty]")?.remove();
    const wrap = document.createElement("div");
    wrap.dataset.message = "";
    wrap.dataset.role = role;
    wrap.className =
      role === "user"
        ? "ml-8 rounded-md bg-indigo-600 px-3 py-2 text-sm text-white"
        : "mr-8 rounded-md bg-white px-3 py-2 text-sm text-slate-800 shadow-sm";
    const who = document.createElement("p");
    who.className = "text-xs opacity-75";
    who.textContent = role === "user" ? "You" : "Agent";
    const body = document.createElement("p");
    body.className = "whitespace-pre-wrap break-words";
    body.dataset.messageText = "";
    body.textContent = text;
    wrap.append(who, body);
    log.append(wrap);
    log.scrollTop = log.scrollHeight;
    return { wrap, body };
  };

  const sendMessage = async (chat, form) => {
    if (chat.dataset.state === "streaming") return;
    const input = form.querySelector("#preview-message");
    const message = input.value.trim();
    if (message === "") {
      input.focus();
      return;
    }
    const log = chat.querySelector("#preview-transcript");
    const errorBox = chat.querySelector("[data-preview-error]");
    const status = chat.querySelector("[data-preview-status]");
    const send = form.querySelector("#preview-send");
    const conversation = form.querySelector("#preview-conversation-id");
    clearError(errorBox);
    addMessage(log, "user", message);
    input.value = "";
    const reply = addMessage(log, "assistant", "");
    reply.wrap.dataset.streaming = "true";
    chat.dataset.state = "streaming";
    send.disabled = true;
    status.textContent = "Waiting for the agent…";
    let finished = false;
    const fail = (err) => {
      finished = true;
      chat.dataset.state = "error";
      showError(errorBox, err);
      status.textContent = "";
      if (reply.body.textContent === "") reply.wrap.remove();
    };
    try {
      const res = await post(
        chat.dataset.streamUrl,
        { message, conversation_id: conversation.value },
        "text/event-stream",
      );
      if (followRedirect(res)) return;
      if (!res.ok || !(res.headers.get("content-type") ?? "").startsWith("text/event-stream")) {
        fail(await errorOf(res));
        return;
      }
      await readEvents(res, (event) => {
        if (typeof event.delta === "string") {
          reply.body.textContent += event.delta;
          status.textContent = "Streaming…";
          log.scrollTop = log.scrollHeight;
        } else if (event.done === true) {
          finished = true;
          reply.body.textContent = event.full_text;
          conversation.value = event.conversation_id;
          chat.dataset.conversationId = event.conversation_id;
          chat.dataset.state = "done";
          const t = event.timings;
          status.textContent =
            t === undefined
              ? "Done."
              : `Claimed in ${t.claim_ms} ms · first token ${t.first_token_ms ?? "—"} ms · total ${t.total_ms} ms`;
          if (Array.isArray(event.citations) && event.citations.length > 0) {
            const sources = document.createElement("p");
            sources.className = "mt-1 text-xs text-slate-500";
            sources.dataset.citations = String(event.citations.length);
            sources.textContent = `${event.citations.length} source${event.citations.length === 1 ? "" : "s"} cited`;
            reply.wrap.append(sources);
          }
        } else if (typeof event.error === "string") {
          fail({
            code: typeof event.code === "string" ? event.code : "SF_ERR_UNKNOWN",
            message: event.error,
          });
        }
      });
      if (!finished) fail({ code: "SF_ERR_STREAM_ENDED", message: "The reply stream ended early." });
    } catch (err) {
      fail({ code: "SF_ERR_NETWORK", message: err instanceof Error ? err.message : String(err) });
    } finally {
      delete reply.wrap.dataset.streaming;
      send.disabled = false;
      input.focus();
    }
  };

  const resetConversation = (chat) => {
    if (chat.dataset.state === "streaming") return;
    chat.querySelector("#preview-conversation-id").value = "";
    delete chat.dataset.conversationId;
    chat.dataset.state = "idle";
    const note = document.createElement("p");
    note.className = "text-sm text-slate-500";
    note.dataset.transcriptEmpty = "";
    note.textContent = EMPTY_NOTE;
    chat.querySelector("#preview-transcript").replaceChildren(note);
    clearError(chat.querySelector("[data-preview-error]"));
    chat.querySelector("[data-preview-status]").textContent = "New conversation.";
    chat.querySelector("#preview-message").focus();
  };

  document.addEventListener("submit", (event) => {
    const form = event.target instanceof Element ? event.target.closest("[data-preview-form]") : null;
    if (form === null) return;
    event.preventDefault();
    void sendMessage(form.closest("[data-preview-chat]"), form);
  });

  document.addEventListener("keydown", (event) => {
    const input = event.target instanceof Element ? event.target.closest("#preview-message") : null;
    if (input === null || event.key !== "Enter" || event.shiftKey || event.isComposing) return;
    event.preventDefault();
    input.form?.requestSubmit();
  });

  // --- the voice call ---
  let call = null;

  const callParts = (section) => ({
    start: section.querySelector("[data-call-start]"),
    end: section.querySelector("[data-call-end]"),
    mute: section.querySelector("[data-call-mute]"),
    status: section.querySelector("[data-call-status]"),
    error: section.querySelector("[data-call-error]"),
    audio: section.querySelector("[data-call-audio]"),
    transcript: section.querySelector("[data-call-transcript]"),
  });

  const setCallState = (section, state, text) => {
    const p = callParts(section);
    section.dataset.callState = state;
    p.status.textContent = text;
    const live = state === "connecting" || state === "connected";
    p.start.classList.toggle("hidden", live);
    p.start.disabled = live;
    p.end.classList.toggle("hidden", !live);
    p.mute.classList.toggle("hidden", state !== "connected");
  };

  const finishCall = (section, state, text) => {
    const p = callParts(section);
    p.audio.replaceChildren();
    delete section.dataset.agentJoined;
    call = null;
    setCallState(section, state, text);
    p.mute.setAttribute("aria-pressed", "false");
    p.mute.textContent = "Mute";
  };

  const addCallLine = (section, role, text) => {
    const line = document.createElement("p");
    line.dataset.role = role;
    line.className = role === "agent" ? "text-slate-800" : "text-indigo-700";
    line.textContent = `${role === "agent" ? "Agent" : "You"}: ${text}`;
    const box = callParts(section).transcript;
    box.append(line);
    box.scrollTop = box.scrollHeight;
  };

  const startCall = async (section) => {
    if (call !== null) return;
    const p = callParts(section);
    clearError(p.error);
    const fail = (err) => {
      finishCall(section, "error", "Not connected.");
      showError(p.error, err);
    };
    const LK = window.LivekitClient;
    if (LK === undefined) {
      fail({ code: "SF_ERR_LIVEKIT_CLIENT_MISSING", message: "The LiveKit client script did not load." });
      return;
    }
    call = { room: null };
    setCallState(section, "connecting", "Dispatching the agent…");
    const conversationId = document.querySelector("#preview-conversation-id")?.value ?? "";
    let session;
    try {
      const res = await post(
        section.dataset.voiceUrl,
        { conversation_id: conversationId },
        "application/json",
      );
      if (followRedirect(res)) return;
      if (!res.ok || !(res.headers.get("content-type") ?? "").includes("application/json")) {
        fail(await errorOf(res));
        return;
      }
      session = await res.json();
    } catch (err) {
      fail({ code: "SF_ERR_NETWORK", message: err instanceof Error ? err.message : String(err) });
      return;
    }
    const room = new LK.Room({ adaptiveStream: true, dynacast: true });
    call = { room };
    room.on(LK.RoomEvent.TrackSubscribed, (track, _publication, participant) => {
      if (track.kind !== LK.Track.Kind.Audio) return;
      const element = track.attach();
      element.dataset.participant = participant.identity;
      p.audio.append(element);
      section.dataset.agentJoined = "true";
      setCallState(
        section,
        "connected",
        `Connected to ${participant.name || participant.identity}: speak now.`,
      );
    });
    room.on(LK.RoomEvent.TrackUnsubscribed, (track) => {
      for (const element of track.detach()) element.remove();
    });
    room.on(LK.RoomEvent.AudioPlaybackStatusChanged, () => {
      if (!room.canPlaybackAudio) {
        room.startAudio().catch((err) =>
          showError(p.error, {
            code: "SF_ERR_AUDIO_BLOCKED",
            message: err instanceof Error ? err.message : String(err),
          }),
        );
      }
    });
    room.on(LK.RoomEvent.Disconnected, () => {
      if (call !== null && call.room === room) finishCall(section, "ended", "The call ended.");
    });
    if (typeof room.registerTextStreamHandler === "function") {
      room.registerTextStreamHandler("lk.transcription", (reader, participant) => {
        reader.readAll().then(
          (text) => {
            if (text.trim() === "") return;
            const mine = participant.identity === room.localParticipant.identity;
            addCallLine(section, mine ? "user" : "agent", text.trim());
          },
          (err) =>
            addCallLine(section, "agent", `(transcript lost: ${err instanceof Error ? err.message : err})`),
        );
      });
    }
    try {
      await room.connect(session.server_url, session.user_token);
      section.dataset.room = session.room_name;
      section.dataset.conversationId = session.conversation_id;
      setCallState(section, "connected", `In room ${session.room_name}: waiting for the agent to speak…`);
      await room.localParticipant.setMicrophoneEnabled(true);
    } catch (err) {
      const denied = err instanceof Error && err.name === "NotAllowedError";
      await room.disconnect();
      fail({
        code: denied ? "SF_ERR_MICROPHONE_DENIED" : "SF_ERR_LIVEKIT_CONNECT",
        message: err instanceof Error ? err.message : String(err),
      });
    }
  };

  const endCall = async (section) => {
    const room = call?.room ?? null;
    if (room === null) return;
    finishCall(section, "ended", "The call ended.");
    await room.disconnect();
  };

  const toggleMute = async (section) => {
    const room = call?.room ?? null;
    if (room === null) return;
    const p = callParts(section);
    const muted = p.mute.getAttribute("aria-pressed") === "true";
    await room.localParticipant.setMicrophoneEnabled(muted);
    p.mute.setAttribute("aria-pressed", String(!muted));
    p.mute.textContent = muted ? "Mute" : "Unmute";
  };

  document.addEventListener("click", (event) => {
    const target = event.target instanceof Element ? event.target : null;
    const chat = target?.closest("[data-preview-reset]") ? target.closest("[data-preview-chat]") : null;
    if (chat !== null && chat !== undefined) {
      resetConversation(chat);
      return;
    }
    const section = target?.closest("[data-preview-voice]") ?? null;
    if (section === null) return;
    const report = (err) =>
      showError(callParts(section).error, {
        code: "SF_ERR_CALL",
        message: err instanceof Error ? err.message : String(err),
      });
    if (target.closest("[data-call-start]")) startCall(section).catch(report);
    else if (target.closest("[data-call-end]")) endCall(section).catch(report);
    else if (target.closest("[data-call-mute]")) toggleMute(section).catch(report);
  });

  window.addEventListener("pagehide", () => {
    void call?.room?.disconnect();
  });
})();
