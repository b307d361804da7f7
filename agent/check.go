package agent

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/agentfed/agentfed/federation"
)

// Kinds are the handler types New builds. An empty type means echo.
var Kinds = []string{"echo", "exec", "http", "openclaw", "llm"}

// Check reports every problem with the handlers of cfg's agents, each
// naming its field (agents[2].handler.url). This package implements the
// handler kinds, so it alone validates them: federation's Config.Validate
// checks the rest of the configuration, and the configuration loader runs
// both. cfg's tokens are needed too: no agent's env may hold one.
func Check(cfg *federation.Config) []federation.Problem {
	var ch checker
	secrets := secretsOf(cfg)
	for i, a := range cfg.Agents {
		ch.handler(&a.Handler, fmt.Sprintf("agents[%d].handler", i), secrets)
	}
	return ch.problems
}

// checkAgent is Check for one agent, as New needs it: its first problem,
// wrapping ErrInvalidConfig, or nil.
func checkAgent(a federation.AgentConfig) error {
	var ch checker
	ch.handler(&a.Handler, "agents[].handler", nil)
	if len(ch.problems) == 0 {
		return nil
	}
	return fmt.Errorf("%w: agent %q: %s", ErrInvalidConfig, a.ID, ch.problems[0])
}

// checker accumulates problems.
type checker struct{ problems []federation.Problem }

func (ch *checker) add(path, format string, args ...any) {
	ch.problems = append(ch.problems, federation.Problem{Path: path, Message: fmt.Sprintf(format, args...)})
}

func (ch *checker) handler(h *federation.HandlerConfig, path string, secrets []secretField) {
	switch h.Type {
	case "", "echo":
	case "exec":
		if len(h.Command) == 0 || h.Command[0] == "" {
			ch.add(path+".command", "required for an exec handler; give the program and its arguments, like [\"./agent.sh\"]")
		}
	case "http":
		if h.URL == "" {
			ch.add(path+".url", "required for an http handler; give the address messages are POSTed to, like http://127.0.0.1:8080/agent")
		} else {
			ch.url(path+".url", h.URL, "http", "https")
		}
	case "openclaw":
		if h.URL == "" {
			ch.add(path+".url", "required for an openclaw handler; give the OpenClaw gateway's address, like ws://127.0.0.1:18789")
		} else {
			ch.url(path+".url", h.URL, "ws", "wss")
		}
	case "llm":
		ch.llm(h, path)
	default:
		ch.add(path+".type", "unknown handler type %q; use one of %s", head([]byte(h.Type), 40), strings.Join(Kinds, ", "))
	}
	if h.TimeoutMs < 0 {
		ch.add(path+".timeoutMs", "must not be negative (got %d); give milliseconds, or 0 for the default", h.TimeoutMs)
	}
	ch.env(h, path+".env", secrets)
}

// url checks a handler's URL: scheme or secureScheme, and a host.
func (ch *checker) url(path, raw, scheme, secureScheme string) {
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		ch.add(path, "not a valid URL (%v); write it like %s://host:port", err, scheme)
		return
	}
	switch {
	case u.Scheme == "":
		ch.add(path, "has no scheme; write it like %s://host:port or %s://host:port", scheme, secureScheme)
	case u.Scheme != scheme && u.Scheme != secureScheme:
		ch.add(path, "scheme %q is not %s:// or %s://", u.Scheme, scheme, secureScheme)
	case u.Hostname() == "":
		ch.add(path, "has no host; write it like %s://host:port", scheme)
	}
}

func (ch *checker) count(path string, n int) {
	if n < 0 {
		ch.add(path, "%d is negative; leave it out for the default", n)
	}
}

// llm checks an llm agent's model endpoint, limits, tools and MCP servers.
func (ch *checker) llm(h *federation.HandlerConfig, path string) {
	if h.BaseURL == "" {
		ch.add(path+".baseUrl", "required for an llm handler; give the OpenAI-compatible API base, like https://api.openai.com/v1 or http://127.0.0.1:11434/v1")
	} else {
		ch.url(path+".baseUrl", h.BaseURL, "http", "https")
	}
	if h.Model == "" {
		ch.add(path+".model", "required for an llm handler; name the model the endpoint serves, like gpt-4o-mini or llama3.1")
	}
	if t := h.Temperature; t != nil && (*t < 0 || *t > 2) {
		ch.add(path+".temperature", "%g is outside 0 to 2", *t)
	}
	ch.count(path+".maxTokens", h.MaxTokens)
	ch.count(path+".maxSteps", h.MaxSteps)
	for i, a := range h.Tools.AllowActions {
		if !slices.Contains(federation.Actions, a) {
			ch.add(fmt.Sprintf("%s.tools.allowActions[%d]", path, i), "%q is not an action; use %s", head([]byte(a), 40), strings.Join(federation.Actions, ", "))
		}
	}
	first := map[string]int{}
	for i, srv := range h.MCPServers {
		p := fmt.Sprintf("%s.mcpServers[%d]", path, i)
		switch j, dup := first[srv.Name]; {
		case !validToolPrefix(srv.Name):
			ch.add(p+".name", "%q must be 1 to 32 letters, digits, _ or -; the model sees the tools as NAME__TOOL", head([]byte(srv.Name), 40))
		case dup:
			ch.add(p+".name", "duplicate name %q (also mcpServers[%d])", srv.Name, j)
		default:
			first[srv.Name] = i
		}
		switch {
		case len(srv.Command) > 0 && srv.URL != "":
			ch.add(p, "has both command and url; give command for a stdio server or url for an HTTP one")
		case srv.URL != "":
			ch.url(p+".url", srv.URL, "http", "https")
		case len(srv.Command) == 0 || srv.Command[0] == "":
			ch.add(p+".command", "required (or url); give the server's program and arguments, like [\"npx\", \"-y\", \"@modelcontextprotocol/server-everything\"]")
		}
	}
}

// validToolPrefix reports whether s may prefix tool names for a model.
func validToolPrefix(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for _, r := range s {
		if !(r == '_' || r == '-' || 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9') {
			return false
		}
	}
	return true
}

// secretField is a token of the configuration and where it is written.
type secretField struct{ path, value string }

// secretsOf lists cfg's tokens, which no agent may be given.
func secretsOf(cfg *federation.Config) []secretField {
	var secrets []secretField
	for i, p := range cfg.Federation.Peers {
		secrets = append(secrets, secretField{fmt.Sprintf("federation.peers[%d].token", i), p.Token})
	}
	secrets = append(secrets, secretField{"gateway.auth.operatorToken", cfg.Gateway.Auth.OperatorToken})
	for i, p := range cfg.Gateway.Auth.Peers {
		secrets = append(secrets,
			secretField{fmt.Sprintf("gateway.auth.peers[%d].token", i), p.Token},
			secretField{fmt.Sprintf("gateway.auth.peers[%d].previousToken", i), p.PreviousToken})
	}
	return secrets
}

// env checks handler.env: only exec agents have one, names are
// environment variable names, and no value is one of the gateway's
// tokens, which an agent must never get.
func (ch *checker) env(h *federation.HandlerConfig, path string, secrets []secretField) {
	if len(h.Env) > 0 && h.Type != "exec" {
		ch.add(path, "only exec handlers take env; remove it, or set handler.type to exec")
		return
	}
	names := make([]string, 0, len(h.Env))
	for name := range h.Env {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		p, value := path+"."+name, h.Env[name]
		if !isEnvName(name) {
			ch.add(p, "%q is not an environment variable name; use letters, digits and _, not starting with a digit", head([]byte(name), 64))
			continue
		}
		if strings.IndexByte(value, 0) >= 0 {
			ch.add(p, "the value holds a NUL byte, which no environment can carry")
		}
		for _, s := range secrets {
			if s.value != "" && subtle.ConstantTimeCompare([]byte(s.value), []byte(value)) == 1 {
				ch.add(p, "is the token of %s; an agent must never get the gateway's own credentials: give it one of its own", s.path)
			}
		}
	}
}

// isEnvName reports whether s is a portable environment variable name.
func isEnvName(s string) bool {
	for i, r := range s {
		switch {
		case r == '_', 'A' <= r && r <= 'Z', 'a' <= r && r <= 'z':
		case '0' <= r && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return s != ""
}
