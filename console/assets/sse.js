// Server-Sent Events over fetch(). EventSource cannot send an Authorization header, and herd's
// API takes credentials only from that header (no cookie, no query parameter — a token in a URL
// would end up in logs), so the stream is read with fetch() and parsed here, per the SSE spec:
// lines `event:`, `data:`, `id:`, comments starting with `:`, an empty line dispatches.
//
// On a dropped connection it reconnects (after 1 s) with `Last-Event-ID` set to the last `id:`
// seen; herd numbers each `second` event with its `t` and first replays every stored second after
// that id (every stored second on a first connection), so nothing is lost and nothing repeats.

import { token } from "./auth.js";

/**
 * Follows `url`, calling onEvent(name, data, id) for each event; onOpen() on each connection,
 * onError(err) when a connection fails (HTTP status on err.status). Stops when an `end` event
 * arrives, when stop() is called, or when onError returns false.
 */
export function follow(url, { onEvent, onOpen, onError }) {
  const abort = new AbortController();
  let lastId = null, ended = false;

  async function connect() {
    const headers = { accept: "text/event-stream", authorization: `Bearer ${token()}` };
    if (lastId !== null) headers["last-event-id"] = lastId;
    const res = await fetch(url, { headers, signal: abort.signal, cache: "no-store" });
    if (!res.ok) {
      const body = await res.json().catch(() => ({}));
      const err = new Error(body.message || `HTTP ${res.status}`);
      err.status = res.status;
      throw err;
    }
    onOpen && onOpen();
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "", event = "message", data = [];
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      let nl;
      while ((nl = buffer.search(/\r\n|\n|\r/)) >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + (buffer.startsWith("\r\n", nl) ? 2 : 1));
        if (line === "") {
          if (data.length) onEvent(event, data.join("\n"), lastId);
          if (event === "end") { ended = true; abort.abort(); return; }
          event = "message"; data = [];
          continue;
        }
        if (line.startsWith(":")) continue;
        const i = line.indexOf(":");
        const field = i < 0 ? line : line.slice(0, i);
        const val = i < 0 ? "" : line.slice(i + 1).replace(/^ /, "");
        if (field === "event") event = val;
        else if (field === "data") data.push(val);
        else if (field === "id") lastId = val;
      }
    }
  }

  (async () => {
    while (!ended && !abort.signal.aborted) {
      try {
        await connect();
      } catch (err) {
        if (abort.signal.aborted) return;
        if (onError && onError(err) === false) return;
      }
      if (ended || abort.signal.aborted) return;
      await new Promise((r) => setTimeout(r, 1000));
    }
  })();

  return { stop: () => abort.abort() };
}
