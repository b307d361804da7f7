package config_test

import (
	"fmt"

	"github.com/agentfed/agentfed/internal/config"
)

func ExampleParse() {
	_, err := config.Parse([]byte(`
federation:
  enabled: true
  requireAuth: true
  peers:
    - id: research-agent
      name: Research Specialist
      urll: ws://127.0.0.1:18790
      agentId: agent-research-01
    - id: data-agent
      name: Data Analysis Agent
      url: http://127.0.0.1:18791
      agentId: agent-data-01
      token: secret
`), "agentfed.yaml")
	fmt.Println(err)
	// Output:
	// agentfed.yaml: line 6: federation.peers[0].token: required because federation.requireAuth is true
	// agentfed.yaml: line 8: federation.peers[0].urll: unknown key (did you mean "url"?)
	// agentfed.yaml: line 12: federation.peers[1].url: scheme "http" is not ws:// or wss://
}
