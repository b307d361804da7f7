// agentfed dashboard: polls /ui/api/state and renders it with DOM calls
// only (never innerHTML), since peer names and errors come from others.
"use strict";

const API = "api/";
const POLL_MS = 1500;
const TIMEOUT_MS = 5000;
const SVG = "http://www.w3.org/2000/svg";

const $ = (id) => document.getElementById(id);
let timer = null;
let polling = false;

// call fetches one API path and returns its JSON, or throws an Error
// whose message is the gateway's; a 401 shows the login form.
async function call(path, body) {
  const ctl = new AbortController();
  const t = setTimeout(() => ctl.abort(), body ? 60000 : TIMEOUT_MS);
  const opts = { signal: ctl.signal, credentials: "same-origin", headers: {} };
  if (body !== undefined) {
    opts.method = "POST";
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(API + path, opts);
  } catch (e) {
    throw new Error(e.name === "AbortError" ? "the gateway did not answer in time" : "cannot reach the gateway: " + e.message);
  } finally {
    clearTimeout(t);
  }
  let data = null;
  try { data = await res.json(); } catch (e) { /* not JSON */ }
  if (!res.ok) {
    const err = data && data.error ? data.error : { code: "HTTP_" + res.status, message: res.statusText };
    const e = new Error(err.code + ": " + err.message);
    e.status = res.status;
    throw e;
  }
  return data;
}

function showError(msg) {
  const el = $("error");
  el.textContent = msg || "";
  el.hidden = !msg;
}

function showLogin(msg) {
  stopPolling();
  $("dashboard").hidden = true;
  $("logout").hidden = true;
  $("login").hidden = false;
  showError(msg);
  $("token").focus();
}

function showDashboard() {
  $("login").hidden = true;
  $("dashboard").hidden = false;
  $("logout").hidden = false;
}

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function fill(tableId, rows, build) {
  const body = $(tableId).tBodies[0];
  const frag = document.createDocumentFragment();
  for (const r of rows) frag.appendChild(build(r));
  body.replaceChildren(frag);
}

function row(cells) {
  const tr = document.createElement("tr");
  for (const c of cells) tr.appendChild(c instanceof Node ? c : el("td", c));
  return tr;
}

function time(ms) {
  return ms ? new Date(ms).toLocaleTimeString() : "";
}

function render(s) {
  $("server").textContent = s.serverId;
  $("updated").textContent = "updated " + time(s.time);
  fill("peers", s.peers, (p) => {
    const h = p.health || {};
    const state = p.enabled === false ? "disabled" : h.state;
    const tr = row([p.id, p.agentId, el("td", state, "state " + state), h.circuit, h.rttMs ? h.rttMs.toFixed(1) : "",
      h.inFlight, p.connected ? "yes" : "no", el("td", h.lastError || "", "clip")]);
    tr.dataset.peer = p.id;
    return tr;
  });
  fill("agents", s.agents, (a) => {
    const tr = row([a.id, a.busy, a.waiting]);
    tr.dataset.agent = a.id;
    return tr;
  });
  const c = s.outboxCounts || {};
  $("outbox-counts").textContent = "(" + ["queued", "failed", "dead", "delivered"].map((k) => k + " " + (c[k] || 0)).join(", ") +
    (s.outboxMore ? "; first " + s.outbox.length + " shown" : "") + ")";
  fill("outbox", s.outbox, (m) => {
    const actions = el("td");
    if (m.state === "dead" || m.state === "failed") actions.appendChild(button("Retry", "retry", m.messageId));
    if (m.state === "queued") actions.appendChild(button("Cancel", "cancel", m.messageId));
    else actions.appendChild(button("Drop", "drop", m.messageId));
    const tr = row([el("td", m.messageId, "clip"), m.kind, m.peerId || "", el("td", m.state, "state " + m.state), m.attempts,
      el("td", m.lastError ? m.lastError.code + ": " + m.lastError.message : "", "clip"), el("td", m.content || "", "clip"), actions]);
    tr.dataset.message = m.messageId;
    return tr;
  });
  fill("audit", s.audit.slice().reverse(), (e) => row([String(e.time).replace("T", " ").slice(0, 23), e.dir, e.kind, e.action || e.method || "", e.peer || "",
    e.agent || "", el("td", e.outcome + (e.count ? " ×" + e.count : ""), e.outcome === "ok" ? "ok" : "bad"),
    el("td", e.detail || e.content || e.remote || "", "clip")]));
  if (s.auditError) showError("audit trail: " + s.auditError);
  topology(s);
}

function button(label, op, id) {
  const b = el("button", label);
  b.type = "button";
  b.dataset.op = op;
  b.addEventListener("click", async () => {
    b.disabled = true;
    try {
      await call("outbox", { op: op, messageId: id });
      showError("");
      await poll();
    } catch (e) {
      showError(op + " " + id + ": " + e.message);
      b.disabled = false;
    }
  });
  return b;
}

// topology draws this gateway in the middle and its peers around it,
// each line and circle classed by the peer's health.
function topology(s) {
  const svg = $("topology");
  const cx = 300, cy = 130, r = 95;
  const nodes = [];
  const n = s.peers.length;
  s.peers.forEach((p, i) => {
    const a = (2 * Math.PI * i) / Math.max(n, 1) - Math.PI / 2 + (n % 2 === 0 ? Math.PI / n : 0);
    const state = p.enabled === false ? "unknown" : (p.health && p.health.state) || "unknown";
    const x = cx + 2.2 * r * Math.cos(a), y = cy + r * Math.sin(a);
    const line = document.createElementNS(SVG, "line");
    line.setAttribute("x1", cx); line.setAttribute("y1", cy);
    line.setAttribute("x2", x); line.setAttribute("y2", y);
    line.setAttribute("class", state);
    nodes.push(line);
    nodes.push(circle(x, y, 18, state, p.id + ": " + state));
    nodes.push(label(x, y + 32, p.id));
  });
  nodes.push(circle(cx, cy, 26, "self", s.serverId));
  nodes.push(label(cx, cy + 44, s.serverId + " (this gateway)"));
  svg.replaceChildren(...nodes);
}

function circle(x, y, radius, cls, title) {
  const c = document.createElementNS(SVG, "circle");
  c.setAttribute("cx", x); c.setAttribute("cy", y); c.setAttribute("r", radius);
  c.setAttribute("class", cls);
  const t = document.createElementNS(SVG, "title");
  t.textContent = title;
  c.appendChild(t);
  return c;
}

function label(x, y, text) {
  const t = document.createElementNS(SVG, "text");
  t.setAttribute("x", x); t.setAttribute("y", y);
  t.textContent = text.length > 40 ? text.slice(0, 39) + "…" : text;
  return t;
}

async function poll() {
  if (polling) return;
  polling = true;
  try {
    render(await call("state"));
    showDashboard();
    if ($("error").dataset.poll) { showError(""); delete $("error").dataset.poll; }
  } catch (e) {
    if (e.status === 401) { showLogin(); return; }
    showError("refresh failed: " + e.message);
    $("error").dataset.poll = "1";
  } finally {
    polling = false;
  }
}

function startPolling() {
  stopPolling();
  poll();
  timer = setInterval(poll, POLL_MS);
}

function stopPolling() {
  if (timer) clearInterval(timer);
  timer = null;
}

$("login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  try {
    await call("login", { token: $("token").value });
    $("token").value = "";
    showError("");
    startPolling();
  } catch (e) {
    showLogin(e.message);
  }
});

$("logout").addEventListener("click", async () => {
  try { await call("logout", {}); } catch (e) { /* the session is gone either way */ }
  showLogin("");
});

$("send-action").addEventListener("change", () => {
  $("send-target-label").textContent = $("send-action").value === "send" ? "Peer id" : "Required capabilities (comma-separated)";
});

$("send-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const action = $("send-action").value;
  const target = $("send-target").value.trim();
  const text = $("send-message").value;
  const body = action === "send"
    ? { action: "send", peerId: target, message: text }
    : { action: "delegate", requiredCapabilities: target.split(",").map((c) => c.trim()).filter((c) => c), task: text };
  if ($("send-durable").checked) body.durable = true;
  const out = $("send-result");
  out.className = "";
  out.textContent = "sending…";
  try {
    const res = await call("tool", body);
    const failed = res && (res.status === "error" || res.error);
    out.className = failed ? "bad" : "ok";
    out.textContent = answerText(res);
  } catch (e) {
    out.className = "bad";
    out.textContent = e.message;
  }
});

// answerText shows the answer's content first, then the whole result.
function answerText(res) {
  const content = res && res.response && res.response.content;
  const head = content !== undefined ? "answer: " + content + "\n\n" : "";
  return head + JSON.stringify(res, null, 2);
}

startPolling();
