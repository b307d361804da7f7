package federation_test

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/agentfed/agentfed/federation"
)

func TestNATSConfigValidation(t *testing.T) {
	tests := []struct {
		name string
		edit func(*federation.Config)
		want []federation.Problem
	}{
		{"websocket default ignores an empty nats section", func(*federation.Config) {}, nil},
		{"nats section without the transport", func(c *federation.Config) { c.NATS.URL = "nats://127.0.0.1:4222" },
			[]federation.Problem{{Path: "nats", Message: `is set but federation.transport is "websocket"; set federation.transport: nats or remove the nats section`}}},
		{"unknown transport", func(c *federation.Config) { c.Federation.Transport = "carrier-pigeon" },
			[]federation.Problem{{Path: "federation.transport", Message: `"carrier-pigeon" is not a transport; use "websocket" or "nats"`}}},
		{"nats needs url or embedded", func(c *federation.Config) { c.Federation.Transport = "nats" },
			[]federation.Problem{{Path: "nats", Message: "set exactly one of nats.url (an external NATS system) and nats.embedded (a nats-server in the gateway)"}}},
		{"bad url, creds without url, cluster without listen, dotted ids", func(c *federation.Config) {
			c.Federation.Transport = "nats"
			c.Federation.ServerID = "site.a"
			c.NATS.URL = "http://x"
			c.Agents = []federation.AgentConfig{{ID: "a.b", Handler: federation.HandlerConfig{Type: "echo"}}, {ID: "a@b", Handler: federation.HandlerConfig{Type: "echo"}}}
		}, []federation.Problem{
			{Path: "nats.url", Message: `server 1 "http://x" is not a nats:// or tls:// URL`},
			{Path: "federation.serverId", Message: `"site.a" has a dot, which NATS subjects use as a separator; pick an id without one`},
			{Path: "agents[0].id", Message: `"a.b" has a dot, which NATS subjects use as a separator; pick an id without one`},
			{Path: "agents[1].id", Message: `"a@b" has an '@', which separates agent and serverId in the peer ids of NATS (<agentId>@<serverId>); pick an id without one`},
		}},
		{"embedded cluster", func(c *federation.Config) {
			c.Federation.Transport = "nats"
			c.NATS.CredsFile = "x.creds"
			c.NATS.Embedded = &federation.NATSEmbeddedConfig{Cluster: federation.NATSClusterConfig{Name: "c", Routes: []string{"http://y"}}}
		}, []federation.Problem{
			{Path: "nats.credsFile", Message: "is only used with nats.url"},
			{Path: "nats.embedded.cluster.listen", Message: "is required with cluster.name (host:port for the other members' routes)"},
			{Path: "nats.embedded.cluster.routes[0]", Message: `"http://y" is not a nats-route:// URL`},
		}},
		{"replicas and token", func(c *federation.Config) {
			c.Federation.Transport = "nats"
			c.NATS.Embedded = &federation.NATSEmbeddedConfig{}
			c.NATS.Replicas = 7
			c.NATS.Token = "t"
		}, []federation.Problem{
			{Path: "nats.replicas", Message: "7 is not a JetStream replica count; use 1 to 5 (3 survives one server lost)"},
			{Path: "nats.token", Message: "is only used with nats.url (an embedded server authenticates its own gateway)"},
		}},
		{"token with creds", func(c *federation.Config) {
			c.Federation.Transport = "nats"
			c.NATS.URL, c.NATS.CredsFile, c.NATS.Token, c.NATS.Replicas = "nats://127.0.0.1:4222", "x.creds", "t", 3
		}, []federation.Problem{
			{Path: "nats.token", Message: "and nats.credsFile both authenticate the connection; set one"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &federation.Config{}
			tt.edit(c)
			var got []federation.Problem
			var ve *federation.ValidationError
			if err := c.Validate(); errors.As(err, &ve) {
				got = ve.Problems
			} else if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
}
