package config

import (
	"errors"
	"fmt"
	"strings"

	"github.com/agentfed/agentfed/federation"
)

// expandSecrets expands ${VAR} in the fields that hold secrets (tokens,
// exec agents' env values, llm agents' apiKey), and only there, reporting unset variables.
func (d *decoder) expandSecrets(c *federation.Config, lookup func(string) (string, bool)) {
	for i := range c.Federation.Peers {
		d.expand(&c.Federation.Peers[i].Token, fmt.Sprintf("federation.peers[%d].token", i), lookup)
	}
	for i := range c.Federation.Discovery.Accept {
		d.expand(&c.Federation.Discovery.Accept[i].Token, fmt.Sprintf("federation.discovery.accept[%d].token", i), lookup)
	}
	d.expand(&c.Gateway.Auth.OperatorToken, "gateway.auth.operatorToken", lookup)
	for i := range c.Gateway.Auth.Peers {
		d.expand(&c.Gateway.Auth.Peers[i].Token, fmt.Sprintf("gateway.auth.peers[%d].token", i), lookup)
		d.expand(&c.Gateway.Auth.Peers[i].PreviousToken, fmt.Sprintf("gateway.auth.peers[%d].previousToken", i), lookup)
	}
	for i := range c.Gateway.Auth.A2A {
		d.expand(&c.Gateway.Auth.A2A[i].Token, fmt.Sprintf("gateway.auth.a2a[%d].token", i), lookup)
		d.expand(&c.Gateway.Auth.A2A[i].PreviousToken, fmt.Sprintf("gateway.auth.a2a[%d].previousToken", i), lookup)
	}
	for i := range c.Agents { // an agent's own credentials
		d.expand(&c.Agents[i].Handler.APIKey, fmt.Sprintf("agents[%d].handler.apiKey", i), lookup)
		for j, srv := range c.Agents[i].Handler.MCPServers {
			for _, m := range []struct {
				kind string
				vals map[string]string
			}{{"env", srv.Env}, {"headers", srv.Headers}} {
				for name, v := range m.vals {
					d.expand(&v, fmt.Sprintf("agents[%d].handler.mcpServers[%d].%s.%s", i, j, m.kind, name), lookup)
					m.vals[name] = v
				}
			}
		}
		env := c.Agents[i].Handler.Env
		for name, v := range env {
			d.expand(&v, fmt.Sprintf("agents[%d].handler.env.%s", i, name), lookup)
			env[name] = v
		}
		d.expand(&c.Agents[i].Handler.Token, fmt.Sprintf("agents[%d].handler.token", i), lookup)
	}
}

func (d *decoder) expand(s *string, path string, lookup func(string) (string, bool)) {
	if d.skipped(path) {
		return
	}
	v, err := expandEnv(*s, lookup)
	if err != nil {
		d.add(path, d.lineOf(path), "%v", err)
		d.skip[path] = true
		return
	}
	*s = v
}

// expandEnv replaces each ${NAME} in s with the value of the environment
// variable NAME, and each $${ with a literal "${". Any other '$' stays as it
// is. A variable that is unset or empty is an error. Errors never quote s,
// which may be a secret.
func expandEnv(s string, lookup func(string) (string, bool)) (string, error) {
	if !strings.Contains(s, "${") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		rest := s[i:]
		switch {
		case strings.HasPrefix(rest, "$${"):
			b.WriteString("${")
			i += len("$${")
		case strings.HasPrefix(rest, "${"):
			end := strings.IndexByte(rest, '}')
			if end < 0 {
				return "", errors.New(`"${" has no closing "}"; write ${NAME} to use an environment variable, or $${ for a literal "${"`)
			}
			name := rest[2:end]
			if !isEnvName(name) {
				return "", errors.New(`"${...}" must hold an environment variable name (letters, digits and _, not starting with a digit); write $${ for a literal "${"`)
			}
			v, ok := lookup(name)
			switch {
			case !ok:
				return "", fmt.Errorf("environment variable %s is not set; set it before starting agentfed, or write the token itself", name)
			case v == "":
				return "", fmt.Errorf("environment variable %s is empty; set it to the token", name)
			}
			b.WriteString(v)
			i += end + 1
		default:
			b.WriteByte(s[i])
			i++
		}
	}
	return b.String(), nil
}

func isEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		switch {
		case r == '_', 'A' <= r && r <= 'Z', 'a' <= r && r <= 'z':
		case '0' <= r && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}
