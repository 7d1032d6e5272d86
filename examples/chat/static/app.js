// The chat page: the browser's own WebSocket and EventSource against the
// generated ChatService, no library. Protojson on the wire: a request is
// {"join": {...}} or {"text": "..."}, a response one of {"welcome"},
// {"joined"}, {"left"}, {"message"}; an empty text frame ends our side.
"use strict";

const service = "/examples.chat.v1.ChatService/";
const $ = (sel) => document.querySelector(sel);
let ws = null; // the chat session
let es = null; // the activity feed
let me = "";

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text; // never innerHTML: names and text are user input
  return e;
}

function clock(ts) {
  const d = ts ? new Date(ts) : new Date();
  return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

function setStatus(text, on) {
  const s = $("#status");
  s.textContent = text;
  s.className = "status " + (on ? "on" : "off");
}

// A page left open for days keeps the latest maxItems entries of each
// list; dropped(item) is told of each entry it lets go.
const maxItems = 500;
const scrolling = new Set(); // lists to scroll to the end at the next frame

function append(list, item, dropped) {
  list.append(item);
  while (list.children.length > maxItems) {
    const old = list.firstElementChild;
    old.remove();
    if (dropped) dropped(old);
  }
  // Reading scrollHeight lays the page out; once per frame, not per
  // entry, or a burst of messages freezes the page (seconds per hundred).
  if (scrolling.size === 0) {
    requestAnimationFrame(() => {
      for (const l of scrolling) l.scrollTop = l.scrollHeight;
      scrolling.clear();
    });
  }
  scrolling.add(list);
}

// --- chat session (WebSocket) ---

// backoff returns a delay that doubles with each call, from min up to
// max, until reset (a connection that works again).
function backoff(min, max) {
  let d = min;
  return {
    next() { const v = d; d = Math.min(2 * d, max); return v; },
    reset() { d = min; },
  };
}

// clientToken is this tab's: drawn once and kept in sessionStorage, so
// that a reload of the tab keeps it, and sent with every join. After a
// network drop or a reload the server may still hold the tab's earlier
// session, and its name, until its keepalive gives up on it (within a
// minute); a join with the same token under that name replaces it at
// once rather than being refused as "name taken" (the room sees that
// session leave and this one join). Other tabs have tokens of their
// own. crypto.getRandomValues rather than randomUUID, which exists only
// in secure contexts: the demo is also opened over plain http from
// other machines (a phone on the LAN).
const clientToken = (() => {
  const key = "chat.clientToken";
  try {
    const t = sessionStorage.getItem(key);
    if (t) return t;
  } catch { /* storage disabled: a token for this page's life */ }
  const t = Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
  try { sessionStorage.setItem(key, t); } catch { /* as above */ }
  return t;
})();

// A joined session whose socket closes with one of these codes joins its
// room again under the same name, as a Go client with wsrpc.WithReconnect
// does: 1001 (the server is shutting down), 1006 (the connection was
// lost, or an attempt found the server still down), 1012 and 1013
// (restarting, try again later: a proxy's) and 4014 (unavailable: the
// member fell behind the room). Other codes are the server's answer and
// end the session, such as 4006 (already_exists: the name is taken,
// which with the tab's token is another client's) and 4010 (aborted: a
// newer session with the tab's token took its place, from a duplicate
// of this tab, which shares its sessionStorage).
const rejoinCodes = new Set([1001, 1006, 1012, 1013, 4014]);
const maxRejoins = 10; // attempts in a row, after 1 s doubling up to 30 s
const rejoinDelay = backoff(1000, 30000);
let session = null; // {room, name} once welcomed: what a lost session rejoins
let rejoins = 0; // attempts since the last welcome

function join(name, room) {
  const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + service + "Chat";
  const sock = new WebSocket(url, "wsrpc.json");
  ws = sock;
  setStatus(session ? "reconnecting…" : "connecting", false);
  sock.onopen = () => sock.send(JSON.stringify({ join: { room, name, clientToken } }));
  sock.onmessage = (e) => onChat(JSON.parse(e.data));
  sock.onclose = (e) => {
    if (ws !== sock) return; // let go of by Leave
    ws = null;
    // session is set only once welcomed: a socket closing with it set is
    // the joined session or an attempt to rejoin it, never a first join.
    if (session && rejoinCodes.has(e.code) && rejoins < maxRejoins) {
      rejoins++;
      setStatus("reconnecting…", false);
      // Each wait is drawn from [d/2, d], so that the pages a restart
      // dropped do not all come back at the same instant.
      const d = rejoinDelay.next();
      const lost = session;
      setTimeout(() => { if (session === lost) join(lost.name, lost.room); }, d / 2 + Math.random() * d / 2);
      return;
    }
    offline();
    if (e.code !== 1000) showError(e.reason || "connection closed (" + e.code + ")");
  };
}

function offline() {
  session = null;
  setStatus("offline", false);
  $("#where").textContent = "not joined";
  $("#send-form").hidden = true;
  $("#join-form").hidden = false;
  $("#messages").hidden = true;
}

function onChat(ev) {
  const list = $("#messages");
  if (ev.welcome) {
    me = ev.welcome.name;
    $("#where").textContent = "#" + ev.welcome.room + " as " + me;
    setStatus("connected · " + ev.welcome.node.slice(0, 8), true);
    $("#join-form").hidden = true;
    if (!session) list.replaceChildren(); // a rejoin keeps what was said
    session = { room: ev.welcome.room, name: me };
    rejoins = 0;
    rejoinDelay.reset();
    list.hidden = false;
    $("#send-form").hidden = false;
    $("#text").focus();
    if (ev.welcome.room !== currentRoom) watch(ev.welcome.room);
  } else if (ev.message) {
    const m = ev.message;
    const li = el("li", "msg" + (m.from === me ? " mine" : ""));
    const meta = el("div", "meta");
    meta.append(el("span", "from", m.from), el("time", "", clock(m.time)));
    li.append(meta, el("div", "bubble", m.text));
    append(list, li);
  } else if (ev.joined) {
    append(list, el("li", "system", ev.joined.name + " joined · " + clock(ev.joined.time)));
  } else if (ev.left) {
    append(list, el("li", "system", ev.left.name + " left · " + clock(ev.left.time)));
  }
}

function showError(text) {
  const p = $("#join-error");
  p.textContent = text;
  p.hidden = false;
}

$("#join-form").addEventListener("submit", (e) => {
  e.preventDefault();
  $("#join-error").hidden = true;
  const name = $("#name").value.trim();
  const room = $("#room").value.trim() || "lobby";
  if (name && !ws) join(name, room);
});

$("#send-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const input = $("#text");
  const text = input.value.trim();
  if (!text || !ws || ws.readyState !== WebSocket.OPEN) return;
  ws.send(JSON.stringify({ text }));
  input.value = "";
});

// Leave: end our half of the stream; the server answers with a normal
// close. While reconnecting, stop: drop the attempt under way, if any.
$("#leave").addEventListener("click", () => {
  session = null;
  if (ws && ws.readyState === WebSocket.OPEN) {
    ws.send("");
    return;
  }
  if (ws) ws.close();
  ws = null;
  offline();
});

// --- room activity (EventSource) ---

let currentRoom = "";

// EventSource retries by itself after a network error, but gives up for
// good on an answer other than a 200 event stream (WHATWG HTML §9.2.3),
// such as a proxy's 503 while the server restarts: the page then starts
// a new feed itself, after 1 s, doubling with each attempt up to 30 s
// (backoff, above), a delay reset once an event arrives. The new feed
// resumes after the last event shown (see watch), so nothing said while
// the server was away is lost.
const feedDelay = backoff(1000, 30000);

// retryFeed counts down to a new feed for room, unless another feed was
// started meanwhile (a join elsewhere, a resource_exhausted restart).
function retryFeed(room, failed, state) {
  let left = feedDelay.next() / 1000;
  const tick = () => {
    if (es !== failed) return;
    if (left === 0) {
      state.textContent = "reconnecting";
      watch(room, true);
      return;
    }
    state.textContent = "reconnecting in " + left + "s";
    left--;
    setTimeout(tick, 1000);
  };
  tick();
}

let seen = new Set(); // ids shown: a feed that resumes elsewhere may repeat some
let lastId = ""; // the id of the last event the feed delivered

// watch starts the activity feed of room: afresh, or, with resume, after
// the last event shown. A new EventSource sends no Last-Event-ID (the
// browser's own reconnections do), so the page passes it as the
// lastEventId parameter, which the server reads in the header's absence.
function watch(room, resume) {
  if (es) es.close();
  currentRoom = room;
  const list = $("#activity");
  const params = new URLSearchParams({ room });
  if (resume && lastId) {
    params.set("lastEventId", lastId);
  } else {
    list.replaceChildren();
    seen = new Set();
    lastId = "";
  }
  const state = $("#feed-state");
  es = new EventSource(service + "Watch?" + params);
  es.onopen = () => { state.textContent = "live"; state.className = "pill live"; };
  es.onerror = () => {
    state.className = "pill";
    if (es.readyState === EventSource.CLOSED) retryFeed(room, es, state);
    else state.textContent = "reconnecting"; // the browser retries by itself
  };
  const show = (kind, icon, text, ts) => (e) => {
    feedDelay.reset();
    if (e.lastEventId) lastId = e.lastEventId;
    if (e.lastEventId && seen.has(e.lastEventId)) return;
    seen.add(e.lastEventId);
    const d = JSON.parse(e.data);
    const li = el("li", kind);
    li.dataset.id = e.lastEventId;
    li.append(el("span", "icon", icon), el("span", "what", text(d)), el("time", "", clock(ts(d))));
    append(list, li, (old) => seen.delete(old.dataset.id));
  };
  es.addEventListener("joined", show("joined", "→", (d) => d.name + " joined", (d) => d.time));
  es.addEventListener("left", show("left", "←", (d) => d.name + " left", (d) => d.time));
  es.addEventListener("message", show("said", "✎", (d) => d.from + ": " + d.text, (d) => d.time));
  // A stream that ends on purpose is not reconnected.
  es.addEventListener("wsrpc.end", () => es.close());
  es.addEventListener("wsrpc.error", (e) => {
    const err = JSON.parse(e.data);
    // unavailable (a server going down, a failure worth retrying) is
    // what a Go client resumes after: left open, the EventSource
    // reconnects with Last-Event-ID as after a cut, and misses nothing.
    if (err.code === "unavailable") return;
    es.close();
    state.textContent = "stopped";
    state.className = "pill";
    append(list, el("li", "system", err.message || "feed ended"));
    // A feed that fell behind the room (a tab that slept, a slow link)
    // starts over with the recent activity after a pause; other
    // errors (a bad room name) would only repeat.
    if (err.code === "resource_exhausted") {
      const stopped = es;
      setTimeout(() => { if (es === stopped) watch(room); }, 2000);
    }
  });
}

watch($("#room").value.trim() || "lobby");
