package federation

// Who sent a request over NATS, and the subject permissions that make the
// answer reliable. A gateway publishes a request for agent A of gateway S
// on af.agent.<S>.<A>.<its own serverId> (durable ones on
// af.durable.<S>.<A>.<its own serverId>): the last token names the
// sender, and the NATS system's subject permissions let each gateway
// publish only with its own serverId there. The receiver then applies the
// sender's gateway.auth.peers grant (allowAgents, allowCapabilities,
// allowMethods, ratePerSec, maxMessageBytes) exactly as over WebSocket.
//
// An embedded nats-server generates those permissions itself: with
// gateway.auth.peers set, each entry is a NATS user (its serverId, its
// token as the password) allowed to publish only as itself and only to
// the agents its grant allows here, to subscribe to its own agents' subjects
// only in its own queue group, and to use only its own JetStream stream.
// For an external NATS system, `agentfed nats permissions` prints the
// same permissions for the operator to configure.

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/agentfed/agentfed/gateway"
)

// natsResponseTTL is how long a gateway may answer a request it received
// (NATS allow_responses): longer than any request waits.
const natsResponseTTL = time.Hour

func natsInboxPrefix(serverID string) string { return "_INBOX_" + serverID }
func natsStreamName(serverID string) string  { return natsStream + "_" + serverID }

// natsSender is the identity of the gateway that published on subject:
// the subject's last token, which the NATS system's permissions reserve
// to that gateway. A sender named in gateway.auth.peers is authenticated
// as that entry; any other is refused when federation.requireAuth is set,
// like a WebSocket peer without a token.
func (n *Node) natsSender(subject string) (*gateway.Identity, error) {
	from := subject[strings.LastIndexByte(subject, '.')+1:]
	if err := checkIdent("the sender token of the NATS subject", from, true); err != nil {
		return nil, err
	}
	id := &gateway.Identity{Role: gateway.RolePeer, PeerID: from, RemoteAddr: "nats"}
	peers := n.auth().Peers
	if slices.ContainsFunc(peers, func(c PeerCredential) bool { return c.ServerID == from }) {
		id.Authenticated, id.Credential = true, "nats"
		return id, nil
	}
	if n.cfg.Federation.RequireAuth {
		return nil, unauthorized("AUTH_TOKEN_MISSING", fmt.Sprintf("gateway %s is not in gateway.auth.peers and this gateway requires authentication (federation.requireAuth)", quoteBounded(from)))
	}
	if err := checkUnauthenticatedName(from, peers); err != nil {
		return nil, err
	}
	return id, nil
}

// NATSUser is a gateway's NATS user and the subject permissions derived
// from its gateway.auth.peers grant.
type NATSUser struct {
	ServerID    string              `json:"user"`
	Permissions *server.Permissions `json:"permissions"`
}

// NATSPermissions returns the NATS user of each gateway.auth.peers entry
// of c, in order: what an embedded nats-server enforces, and what an
// external one must be configured with.
func NATSPermissions(c *Config) []NATSUser {
	var users []NATSUser
	for _, cred := range c.Gateway.Auth.Peers {
		if cred.ServerID == "" || cred.ServerID == c.Federation.ServerID {
			continue
		}
		users = append(users, NATSUser{ServerID: cred.ServerID, Permissions: natsPermissions(c.Federation.ServerID, c.Agents, cred)})
	}
	return users
}

// natsPermissions is what the gateway cred names may do on the NATS
// system of gateway self, whose agents are agents.
func natsPermissions(self string, agents []AgentConfig, cred PeerCredential) *server.Permissions {
	x, stream, results := cred.ServerID, natsStreamName(cred.ServerID), natsResultStreamName(cred.ServerID)
	p := &server.Permissions{
		Publish: &server.SubjectPermission{Allow: []string{
			"af.agent.*.*." + x, "af.durable.*.*." + x, // requests, as itself only
			"$JS.API.STREAM.INFO." + stream, "$JS.API.CONSUMER.*." + stream + ".>",
			"$JS.API.CONSUMER.MSG.NEXT." + stream + ".*", "$JS.ACK." + stream + ".>",
			"$JS.API.STREAM.MSG.GET." + stream,                                       // dead letters
			natsResultSubject("*", x),                                                // outcomes of durable messages, as itself only
			"$JS.API.STREAM.INFO." + results, "$JS.API.CONSUMER.*." + results + ".>", // its own outcomes only
			"$JS.API.CONSUMER.MSG.NEXT." + results + ".*", "$JS.ACK." + results + ".>",
			natsBroadcastSubject(x), natsReplySubject("*", "*", x), // broadcasts and their answers, as itself only
		}},
		Subscribe: &server.SubjectPermission{Allow: []string{
			natsAgentSubject(x, ">") + " " + natsQueue(x), // its own agents, in its own queue group only
			natsInboxPrefix(x) + ".>",
			natsAdvisorySubject(x) + " " + natsQueue(x),                   // its dead letters
			natsBroadcastAll + " " + natsQueue(x), "af.reply." + x + ".>", // broadcasts, answers to its own
		}},
		Response: &server.ResponsePermission{MaxMsgs: 1, Expires: natsResponseTTL},
	}
	// Its synced context: its own bucket only, which it reads, watches
	// and writes by compare-and-swap (nats_context.go). The directory: it
	// reads and watches everyone's entries and puts its own only
	// (nats_registry.go).
	p.Publish.Allow = append(p.Publish.Allow, natsKVPermissions(natsContextBucketName(x), ">", true)...)
	p.Publish.Allow = append(p.Publish.Allow, natsKVPermissions(natsRegistryBucket, natsRegistryKey(x), false)...)
	for _, a := range agents {
		if !cred.allows(a) {
			p.Publish.Deny = append(p.Publish.Deny, natsAgentSubject(self, a.ID)+"."+x, natsDurableSubject(self, a.ID)+"."+x)
		}
	}
	return p
}

// allows reports whether c's allowAgents and allowCapabilities let its
// gateway reach agent a (checkGrant's rule).
func (c *PeerCredential) allows(a AgentConfig) bool {
	if len(c.AllowAgents) > 0 && !slices.Contains(c.AllowAgents, a.ID) {
		return false
	}
	return len(c.AllowCapabilities) == 0 || grantAllows(c.AllowCapabilities, a.Capabilities)
}

// natsEmbeddedUsers are the users of the nats-server the gateway embeds:
// itself (every permission, a random password) and one per
// gateway.auth.peers entry. None when gateway.auth.peers is empty: the
// server is then open to whoever reaches its listen address.
func (n *Node) natsEmbeddedUsers() (users []*server.User, selfPassword string, err error) {
	granted := NATSPermissions(&n.cfg)
	if len(granted) == 0 {
		return nil, "", nil
	}
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return nil, "", err
	}
	selfPassword = hex.EncodeToString(b)
	users = append(users, &server.User{Username: n.serverID, Password: selfPassword})
	for i, u := range granted {
		cred := n.cfg.Gateway.Auth.Peers[slices.IndexFunc(n.cfg.Gateway.Auth.Peers, func(c PeerCredential) bool { return c.ServerID == u.ServerID })]
		if cred.PreviousToken != "" {
			n.log.Warn("the embedded nats-server accepts only the current token of a gateway.auth.peers entry", "peer", u.ServerID)
		}
		users = append(users, &server.User{Username: u.ServerID, Password: cred.Token, Permissions: granted[i].Permissions})
	}
	return users, selfPassword, nil
}

// natsKVPermissions are the subjects a gateway publishes to read and
// watch KV bucket and to put the keys matching key (a wildcard may stand
// for many): the replies and the watch's messages come to its inbox. In
// a bucket others watch too (not own), it may only create and delete
// consumers, not list them: it cannot learn the random names of others'.
func natsKVPermissions(bucket, key string, own bool) []string {
	stream := "KV_" + bucket
	consumers := []string{"$JS.API.CONSUMER.*." + stream, "$JS.API.CONSUMER.*." + stream + ".>"}
	if !own {
		consumers = []string{"$JS.API.CONSUMER.CREATE." + stream, "$JS.API.CONSUMER.CREATE." + stream + ".>",
			"$JS.API.CONSUMER.DELETE." + stream + ".*"}
	}
	return append(consumers, "$KV."+bucket+"."+key,
		"$JS.API.STREAM.INFO."+stream, "$JS.API.DIRECT.GET."+stream+".>", "$JS.FC."+stream+".>")
}
