package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/agentfed/agentfed/federation"
)

// Parse decodes, expands, defaults and validates the configuration in data.
// name (usually the file name) prefixes each line of the error. The error,
// if any, is a *federation.ValidationError listing every problem sorted by
// line.
func Parse(data []byte, name string) (*federation.Config, error) {
	return parse(data, name, os.LookupEnv)
}

// Load reads the file at path and parses it with [Parse].
func Load(path string) (*federation.Config, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("load config: %w; write an example there with: agentfed init %s", err, path)
	}
	if err != nil {
		return nil, fmt.Errorf("load config: %w", err)
	}
	return Parse(data, path)
}

// Default returns the configuration used when there is no configuration
// file: federation enabled, no peers, and one built-in echo agent, with
// every default applied.
func Default() *federation.Config {
	c := &federation.Config{
		Federation: federation.FederationConfig{Enabled: true},
		Agents: []federation.AgentConfig{{
			ID:           "echo",
			Name:         "Echo agent",
			Capabilities: []string{"echo"},
			Description:  "Answers with what it received",
			Handler:      federation.HandlerConfig{Type: "echo"},
		}},
	}
	c.ApplyDefaults()
	return c
}
