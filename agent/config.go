package agent

import (
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/agentfed/agentfed/federation"
)

// New builds the handler an agents[] entry of the configuration describes:
// handler.type "" or "echo" gives [Echo], "exec" an [*Exec], "http" an
// [*HTTP] and "openclaw" an [*OpenClaw]; handler.timeoutMs becomes the
// handler's Timeout. Errors wrap [ErrInvalidConfig] and name the offending
// field.
func New(cfg federation.AgentConfig) (federation.Handler, error) {
	hc := cfg.Handler
	if hc.TimeoutMs < 0 {
		return nil, fmt.Errorf("%w: agent %q: agents[].handler.timeoutMs is %d; use a positive number of milliseconds, or 0 for no cap",
			ErrInvalidConfig, cfg.ID, hc.TimeoutMs)
	}
	timeout := time.Duration(hc.TimeoutMs) * time.Millisecond
	switch hc.Type {
	case "", "echo":
		return Echo{}, nil
	case "exec":
		if len(hc.Command) == 0 || hc.Command[0] == "" {
			return nil, fmt.Errorf(`%w: agent %q: agents[].handler.command is empty; an exec agent needs the program and its arguments, e.g. ["./my-agent", "--verbose"]`,
				ErrInvalidConfig, cfg.ID)
		}
		return &Exec{Command: hc.Command, Dir: hc.Dir, Timeout: timeout, Env: hc.Env}, nil
	case "http":
		if err := checkURL(hc.URL); err != nil {
			return nil, fmt.Errorf("%w: agent %q: agents[].handler.url %q %v", ErrInvalidConfig, cfg.ID, hc.URL, err)
		}
		return &HTTP{URL: hc.URL, Timeout: timeout}, nil
	case "openclaw":
		if err := checkWSURL(hc.URL); err != nil {
			return nil, fmt.Errorf("%w: agent %q: agents[].handler.url %q %v", ErrInvalidConfig, cfg.ID, hc.URL, err)
		}
		return &OpenClaw{URL: hc.URL, Token: hc.Token, AgentID: hc.AgentID, Timeout: timeout}, nil
	}
	return nil, fmt.Errorf("%w: agent %q: agents[].handler.type %q is not one of echo, exec, http, openclaw",
		ErrInvalidConfig, cfg.ID, hc.Type)
}

// checkURL reports what is wrong with an http agent's URL, phrased to follow
// the URL in a message.
func checkURL(s string) error {
	if s == "" {
		return errors.New("is empty; an http agent needs the address to POST messages to, e.g. http://127.0.0.1:8080/agent")
	}
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return fmt.Errorf("is not a URL: %v", err)
	case u.Scheme != "http" && u.Scheme != "https":
		return errors.New("must start with http:// or https://")
	case u.Host == "":
		return errors.New("has no host")
	}
	return nil
}

// checkWSURL reports what is wrong with an openclaw agent's gateway URL,
// phrased to follow the URL in a message.
func checkWSURL(s string) error {
	if s == "" {
		return errors.New("is empty; an openclaw agent needs its OpenClaw gateway's address, e.g. ws://127.0.0.1:18789")
	}
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return fmt.Errorf("is not a URL: %v", err)
	case u.Scheme != "ws" && u.Scheme != "wss":
		return errors.New("must start with ws:// or wss://")
	case u.Host == "":
		return errors.New("has no host")
	}
	return nil
}
