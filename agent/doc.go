// Package agent provides the built-in local agent kinds that a gateway hosts
// and that answer federation messages addressed to them.
//
// Each kind implements [federation.Handler]:
//
//   - [Echo] answers with the request's content and shows what arrived: the
//     message's context plus a "received" summary of its envelope. It is the
//     default kind and is meant for trying out a federation.
//   - [Exec] runs a program once per message, feeds it the message as JSON on
//     stdin and takes its stdout as the reply.
//   - [HTTP] POSTs the message as JSON to a URL and takes the response body
//     as the reply.
//   - [OpenClaw] runs a turn of an agent of an OpenClaw gateway, as an
//     OpenClaw operator client, and takes the turn's final reply.
//   - [LLM] has a model behind an OpenAI-compatible Chat Completions API
//     answer, in a tool-calling loop: agent_federation on its own gateway
//     (federation.ToolFor: never beyond what the message's sender may do)
//     and the tools of its [MCPServer]s.
//
// [New] builds the kind chosen by an agents[] entry of the configuration.
//
// # Replies from Exec and HTTP
//
// A program's stdout (or a response body) is normally the reply's content,
// with surrounding white space trimmed. When it is exactly a JSON object whose
// "content" field is a string, the reply is that object instead:
//
//	{"content": "the reply", "context": {"any": "object"}}
//
// "context" is optional and, when present, must be a JSON object. Any other
// output, including a JSON object without a string "content", is taken
// verbatim as text; to reply with literal JSON text, put it in "content".
//
// # Guarantees
//
// A handler's Timeout caps every invocation even when the caller would wait
// longer; exceeding it, a non-zero exit status, a non-2xx HTTP status or an
// oversized reply is a [*federation.AgentError] wrapping
// [federation.ErrAgentFailed]. Its details (the command line, the tail of
// stderr, the URL, the start of the error page) stay in the gateway's log
// and audit log; the remote caller is told only what happened ("failed:
// exit status 3") and an error id. When the caller gives up (its context is
// done) the handler returns promptly with an error wrapping the context's
// error, so the gateway reports TIMEOUT or CANCELLED rather than
// AGENT_ERROR.
//
// An Exec program's environment holds only the gateway's variables that
// [BaseEnv] names, and those its Env sets: never the gateway's tokens.
//
// On Unix an Exec invocation runs in its own process group, and the whole
// group is killed when the invocation times out, is cancelled or finishes:
// no process started for a message outlives it. A program that must keep a
// helper running has to start it in a new session (setsid). On Linux the
// program is also killed when the gateway dies, even by SIGKILL (a
// parent-death signal); what it started itself is not, so a script should
// exec its last, long-running command.
//
// # Concurrency
//
// All handlers are safe for concurrent use: each call to Handle is
// independent (Exec starts one process per call, OpenClaw opens one
// connection per call). Their fields must not be
// changed once Handle has been called.
package agent
