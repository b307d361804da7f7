package federation

import (
	"fmt"
	"strings"
)

// Transports, the values of federation.transport.
const (
	TransportWebSocket = "websocket"
	TransportNATS      = "nats"
)

// NATSConfig is the NATS system gateways meet on with federation.transport
// nats: an external one (URL, CredsFile) or one the gateway embeds.
type NATSConfig struct {
	// URL is an external NATS system, such as "nats://nats.example:4222"
	// (comma-separated for several servers).
	URL string `yaml:"url" json:"url,omitempty"`
	// CredsFile is a standard NATS credentials file for URL.
	CredsFile string `yaml:"credsFile" json:"credsFile,omitempty"`
	// Token authenticates to a gateway's embedded nats-server as the
	// NATS user named by this gateway's serverId: the token of this
	// gateway's entry in that gateway's gateway.auth.peers. Write ${VAR}.
	Token string `yaml:"token" json:"token,omitempty"`
	// Replicas is how many servers of the NATS cluster keep each durable
	// message, synced context and directory entry (JetStream stream and
	// KV bucket replicas): 1 (default) to 5.
	Replicas int `yaml:"replicas" json:"replicas,omitempty"`
	// Embedded runs a nats-server inside the gateway instead.
	Embedded *NATSEmbeddedConfig `yaml:"embedded" json:"embedded,omitempty"`
}

// NATSEmbeddedConfig is a nats-server the gateway runs itself.
type NATSEmbeddedConfig struct {
	// Listen is the client address. Default 127.0.0.1:4222.
	// JetStream keeps its files under storage.dir/nats.
	Listen  string            `yaml:"listen" json:"listen,omitempty"`
	Cluster NATSClusterConfig `yaml:"cluster" json:"cluster"`
}

// NATSClusterConfig joins embedded servers into one cluster.
type NATSClusterConfig struct {
	Name   string   `yaml:"name" json:"name,omitempty"`
	Listen string   `yaml:"listen" json:"listen,omitempty"`
	Routes []string `yaml:"routes" json:"routes,omitempty"`
}

// replicas is nats.replicas with its default.
func (c *NATSConfig) replicas() int { return max(c.Replicas, 1) }

// natsTransport reports whether c federates over NATS.
func (c *Config) natsTransport() bool { return c.Federation.Transport == TransportNATS }

// nats checks federation.transport and the nats section.
func (ch *checker) nats(c *Config) {
	switch c.Federation.Transport {
	case "", TransportWebSocket:
		if c.NATS.URL != "" || c.NATS.Embedded != nil {
			ch.add("nats", "is set but federation.transport is %q; set federation.transport: nats or remove the nats section", cmpOr(c.Federation.Transport, TransportWebSocket))
		}
		return
	case TransportNATS:
	default:
		ch.add("federation.transport", "%s is not a transport; use %q or %q", quoteBounded(c.Federation.Transport), TransportWebSocket, TransportNATS)
		return
	}
	n := &c.NATS
	if (n.URL == "") == (n.Embedded == nil) {
		ch.add("nats", "set exactly one of nats.url (an external NATS system) and nats.embedded (a nats-server in the gateway)")
	}
	if n.URL != "" {
		for i, u := range strings.Split(n.URL, ",") {
			if !strings.HasPrefix(u, "nats://") && !strings.HasPrefix(u, "tls://") {
				ch.add("nats.url", "server %d %s is not a nats:// or tls:// URL", i+1, quoteBounded(u))
			}
		}
	}
	if n.CredsFile != "" && n.URL == "" {
		ch.add("nats.credsFile", "is only used with nats.url")
	}
	if n.Replicas < 0 || n.Replicas > 5 {
		ch.add("nats.replicas", "%d is not a JetStream replica count; use 1 to 5 (3 survives one server lost)", n.Replicas)
	}
	if n.Token != "" && n.URL == "" {
		ch.add("nats.token", "is only used with nats.url (an embedded server authenticates its own gateway)")
	}
	if n.Token != "" && n.CredsFile != "" {
		ch.add("nats.token", "and nats.credsFile both authenticate the connection; set one")
	}
	if e := n.Embedded; e != nil {
		if e.Listen != "" {
			ch.listen("nats.embedded.listen", e.Listen)
		}
		cl := e.Cluster
		if cl.Name == "" && (cl.Listen != "" || len(cl.Routes) > 0) {
			ch.add("nats.embedded.cluster.name", "is required with cluster.listen or cluster.routes")
		}
		if cl.Name != "" && cl.Listen == "" {
			ch.add("nats.embedded.cluster.listen", "is required with cluster.name (host:port for the other members' routes)")
		}
		for i, r := range cl.Routes {
			if !strings.HasPrefix(r, "nats-route://") && !strings.HasPrefix(r, "nats://") {
				ch.add(fmt.Sprintf("nats.embedded.cluster.routes[%d]", i), "%s is not a nats-route:// URL", quoteBounded(r))
			}
		}
	}
	// Ids become subject tokens: af.agent.<serverId>.<agentId>.
	if strings.Contains(c.Federation.ServerID, ".") {
		ch.add("federation.serverId", "%s has a dot, which NATS subjects use as a separator; pick an id without one", quoteBounded(c.Federation.ServerID))
	}
	for i, a := range c.Agents {
		if strings.Contains(a.ID, ".") {
			ch.add(fmt.Sprintf("agents[%d].id", i), "%s has a dot, which NATS subjects use as a separator; pick an id without one", quoteBounded(a.ID))
		} else if strings.Contains(a.ID, "@") {
			ch.add(fmt.Sprintf("agents[%d].id", i), "%s has an '@', which separates agent and serverId in the peer ids of NATS (<agentId>@<serverId>); pick an id without one", quoteBounded(a.ID))
		}
	}
}
