package config

import _ "embed"

// Example is a commented configuration file showing every key, which
// `agentfed init` writes. It parses without any environment variables set.
//
//go:embed example.yaml
var Example string
