package agent

import (
	"time"

	"github.com/agentfed/agentfed/federation"
)

// New builds the handler an agents[] entry of the configuration describes:
// handler.type "" or "echo" gives [Echo], "exec" an [*Exec], "http" an
// [*HTTP], "openclaw" an [*OpenClaw] and "llm" an [*LLM]; handler.timeoutMs
// becomes the handler's Timeout. Errors wrap [ErrInvalidConfig] and name the
// offending field.
func New(cfg federation.AgentConfig) (federation.Handler, error) {
	if err := checkAgent(cfg); err != nil {
		return nil, err
	}
	hc := cfg.Handler
	timeout := time.Duration(hc.TimeoutMs) * time.Millisecond
	switch hc.Type {
	case "exec":
		return &Exec{Command: hc.Command, Dir: hc.Dir, Timeout: timeout, Env: hc.Env}, nil
	case "http":
		return &HTTP{URL: hc.URL, Timeout: timeout}, nil
	case "openclaw":
		return &OpenClaw{URL: hc.URL, Token: hc.Token, AgentID: hc.AgentID, Timeout: timeout}, nil
	case "llm":
		return newLLM(cfg, timeout), nil
	}
	return Echo{}, nil
}

// newLLM builds an llm agent from a checked handler config.
func newLLM(cfg federation.AgentConfig, timeout time.Duration) *LLM {
	hc := cfg.Handler
	l := &LLM{BaseURL: hc.BaseURL, Model: hc.Model, APIKey: hc.APIKey, System: hc.System, Temperature: hc.Temperature,
		MaxTokens: hc.MaxTokens, MaxSteps: hc.MaxSteps, AllowActions: hc.Tools.AllowActions, Timeout: timeout}
	for _, srv := range hc.MCPServers {
		l.MCPServers = append(l.MCPServers, MCPServer{Name: srv.Name, Command: srv.Command, Env: srv.Env, URL: srv.URL, Headers: srv.Headers})
	}
	return l
}
