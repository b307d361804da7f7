package agent

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/agentfed/agentfed/federation"
)

// New builds the handler an agents[] entry of the configuration describes:
// handler.type "" or "echo" gives [Echo], "exec" an [*Exec], "http" an
// [*HTTP], "openclaw" an [*OpenClaw] and "llm" an [*LLM]; handler.timeoutMs
// becomes the handler's Timeout. Errors wrap [ErrInvalidConfig] and name the
// offending field.
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
	case "llm":
		return newLLM(cfg, timeout)
	}
	return nil, fmt.Errorf("%w: agent %q: agents[].handler.type %q is not one of echo, exec, http, openclaw, llm",
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

// newLLM builds an llm agent, refusing what it cannot work with.
func newLLM(cfg federation.AgentConfig, timeout time.Duration) (*LLM, error) {
	hc := cfg.Handler
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: agent %q: %s", ErrInvalidConfig, cfg.ID, fmt.Sprintf(format, args...))
	}
	if hc.BaseURL == "" {
		return nil, bad("agents[].handler.baseUrl is empty; give the OpenAI-compatible API base, like https://api.openai.com/v1")
	}
	if err := checkURL(hc.BaseURL); err != nil {
		return nil, bad("agents[].handler.baseUrl %q %v", hc.BaseURL, err)
	}
	switch {
	case hc.Model == "":
		return nil, bad("agents[].handler.model is empty; name the model the endpoint serves, like gpt-4o-mini or llama3.1")
	case hc.Temperature != nil && (*hc.Temperature < 0 || *hc.Temperature > 2):
		return nil, bad("agents[].handler.temperature %g is outside 0 to 2", *hc.Temperature)
	case hc.MaxTokens < 0 || hc.MaxSteps < 0:
		return nil, bad("agents[].handler.maxTokens and maxSteps must not be negative")
	}
	for _, a := range hc.Tools.AllowActions {
		if !slices.Contains(federation.Actions, a) {
			return nil, bad("agents[].handler.tools.allowActions: %q is not an action; use %s", head([]byte(a), 40), strings.Join(federation.Actions, ", "))
		}
	}
	l := &LLM{BaseURL: hc.BaseURL, Model: hc.Model, APIKey: hc.APIKey, System: hc.System, Temperature: hc.Temperature,
		MaxTokens: hc.MaxTokens, MaxSteps: hc.MaxSteps, AllowActions: hc.Tools.AllowActions, Timeout: timeout}
	for i, srv := range hc.MCPServers {
		if srv.Name == "" || (len(srv.Command) == 0) == (srv.URL == "") {
			return nil, bad("agents[].handler.mcpServers[%d] needs a name and either command or url", i)
		}
		l.MCPServers = append(l.MCPServers, MCPServer{Name: srv.Name, Command: srv.Command, Env: srv.Env, URL: srv.URL, Headers: srv.Headers})
	}
	return l, nil
}
