package federation

import (
	"crypto/subtle"
	"fmt"
	"slices"
	"strings"
)

// agentEnv checks agents[].handler.env: only exec agents have one, names are
// environment variable names, and no value is one of this gateway's
// tokens, which an agent must never get.
func (ch *checker) agentEnv(c *Config) {
	var secrets []secretField
	for i, p := range c.Federation.Peers {
		secrets = append(secrets, secretField{fmt.Sprintf("federation.peers[%d].token", i), p.Token})
	}
	secrets = append(secrets, secretField{"gateway.auth.operatorToken", c.Gateway.Auth.OperatorToken})
	for i, p := range c.Gateway.Auth.Peers {
		secrets = append(secrets,
			secretField{fmt.Sprintf("gateway.auth.peers[%d].token", i), p.Token},
			secretField{fmt.Sprintf("gateway.auth.peers[%d].previousToken", i), p.PreviousToken})
	}
	for i, a := range c.Agents {
		path := fmt.Sprintf("agents[%d].handler.env", i)
		if len(a.Handler.Env) > 0 && a.Handler.Type != "exec" {
			ch.add(path, "only exec handlers take env; remove it, or set handler.type to exec")
			continue
		}
		names := make([]string, 0, len(a.Handler.Env))
		for name := range a.Handler.Env {
			names = append(names, name)
		}
		slices.Sort(names)
		for _, name := range names {
			ch.envVar(path+"."+name, name, a.Handler.Env[name], secrets)
		}
	}
}

// secretField is a token of the configuration and where it is written.
type secretField struct{ path, value string }

func (ch *checker) envVar(path, name, value string, secrets []secretField) {
	if !isEnvName(name) {
		ch.add(path, "%q is not an environment variable name; use letters, digits and _, not starting with a digit", clip(name, 64))
		return
	}
	if strings.IndexByte(value, 0) >= 0 {
		ch.add(path, "the value holds a NUL byte, which no environment can carry")
	}
	for _, s := range secrets {
		if s.value != "" && subtle.ConstantTimeCompare([]byte(s.value), []byte(value)) == 1 {
			ch.add(path, "is the token of %s; an agent must never get the gateway's own credentials: give it one of its own", s.path)
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
