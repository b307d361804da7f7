// The agent_federation tool for OpenClaw agents. Each call is one action
// object, exactly as `agentfed tool` takes it; the plugin forwards it to the
// local agentfed gateway (method federation.tool, as an operator, with the
// token from the plugin's config) and hands the action's result back to the
// model as JSON text. Needs a global WebSocket (Node 22 and later).
import { readFileSync } from "node:fs";

const schema = JSON.parse(readFileSync(new URL("./tool_schema.json", import.meta.url), "utf8"));

const DESCRIPTION =
  "Talk to agents on other servers: send a message to a peer's agent, delegate a task to " +
  "any peer with the required capabilities, broadcast to all peers, list, register and unregister peers, " +
  "sync shared context with a peer, and query a peer's capabilities.";

const DEFAULT_URL = "ws://127.0.0.1:18789";
const DEFAULT_TIMEOUT_MS = 120000;
const MAX_FRAME = 4 << 20; // agentfed's policy.maxPayload

export default {
  id: "agentfed",
  name: "agentfed",
  description: "The agent_federation tool, forwarded to the local agentfed gateway.",
  register(api) {
    const cfg = api.pluginConfig ?? {};
    api.registerTool({
      name: "agent_federation",
      description: DESCRIPTION,
      parameters: schema,
      async execute(_toolCallId, params, signal) {
        let result;
        try {
          result = await federationTool(cfg, params, signal);
        } catch (err) {
          // The model sees what went wrong, as agentfed's error shape.
          result = { error: { code: err.code ?? "PEER_UNAVAILABLE", message: String(err.message ?? err) } };
        }
        return { content: [{ type: "text", text: JSON.stringify(result) }], details: result };
      },
    });
  },
};

// federationTool runs one action on the agentfed gateway and returns its
// result; a refused action throws an Error carrying agentfed's code.
export function federationTool(cfg, action, signal) {
  const url = cfg.gatewayUrl || DEFAULT_URL;
  const timeoutMs = cfg.timeoutMs || DEFAULT_TIMEOUT_MS;
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    let settled = false;
    const finish = (err, value) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      try { ws.close(1000); } catch {}
      if (err) reject(err); else resolve(value);
    };
    const fail = (code, message) => finish(Object.assign(new Error(message), { code }));
    const onAbort = () => fail("CANCELLED", "the tool call was cancelled");
    const timer = setTimeout(() => fail("TIMEOUT", `agentfed gateway ${url} did not answer within ${timeoutMs} ms`), timeoutMs);
    if (signal?.aborted) return onAbort();
    signal?.addEventListener("abort", onAbort);

    const send = (id, method, params) => ws.send(JSON.stringify({ type: "req", id, method, params }));
    ws.addEventListener("error", () => fail("PEER_UNAVAILABLE", `cannot reach the agentfed gateway at ${url}; is agentfed serve running?`));
    ws.addEventListener("close", (ev) => fail("PEER_UNAVAILABLE", `agentfed gateway ${url} closed the connection (${ev.code} ${ev.reason})`));
    ws.addEventListener("message", (ev) => {
      if (typeof ev.data !== "string" || ev.data.length > MAX_FRAME) return fail("INVALID_REQUEST", "agentfed gateway sent an unexpected frame");
      let f;
      try { f = JSON.parse(ev.data); } catch { return fail("INVALID_REQUEST", "agentfed gateway sent malformed JSON"); }
      if (f.type === "event" && f.event === "connect.challenge") {
        return send("connect", "connect", {
          minProtocol: 4, maxProtocol: 4,
          client: { id: "gateway-client", mode: "backend", version: "0.1.0", platform: "openclaw-plugin", displayName: "agentfed plugin" },
          role: "operator",
          ...(cfg.token ? { auth: { token: cfg.token } } : {}),
        });
      }
      if (f.type !== "res") return;
      if (!f.ok) return fail(f.error?.code ?? "INTERNAL", f.error?.message ?? `${f.id} failed`);
      if (f.id === "connect") return send("tool", "federation.tool", action);
      if (f.id === "tool") return finish(null, f.payload);
    });
  });
}
