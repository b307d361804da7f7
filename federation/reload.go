package federation

import (
	"reflect"
	"slices"
)

// Reload applies a new configuration's credentials, static peers and
// gateway.dynamicPeerHosts without a restart (a dynamic or discovered
// peer the new list no longer allows is disconnected): gateway.auth (operator token, peer tokens and
// previous tokens, grants) takes effect for new connections at once, open
// connections whose credential it no longer accepts (a removed token,
// previousToken or gateway.auth.peers entry, a changed operator token, a
// disabled peer) are closed, and a static peer whose settings changed (a
// new token, say) is redialled.
// Other settings need a restart; Reload says which of them differ.
func (n *Node) Reload(cfg *Config) (needRestart []string, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	auth := cfg.Gateway.Auth
	n.authCfg.Store(&auth)
	for _, id := range n.peers.replaceStatic(cfg.Federation.Peers) {
		n.pool.Drop(id)
		n.tracker.forget(id)
	}
	n.revokeStale(&auth)
	allow := newHostAllowList(cfg.Gateway.DynamicPeerHosts)
	n.hostAllow.Store(allow)
	for _, p := range n.peers.list() {
		// A peer the list no longer allows is disconnected (its next dial is
		// refused, naming the list); one not connected dials afresh, without
		// waiting out a backoff from the old list.
		if p.source != SourceStatic && (allow.checkURL(p.URL) != nil || !n.pool.Connected(p.ID)) {
			n.pool.Drop(p.ID)
		}
	}
	n.pool.RetryRefused() // the fix may be on either side
	n.log.Info("configuration reloaded", "peerCredentials", len(auth.Peers), "staticPeers", len(cfg.Federation.Peers),
		"operatorToken", auth.OperatorToken != "")
	if cfg.Gateway.Listen != n.cfg.Gateway.Listen {
		needRestart = append(needRestart, "gateway.listen")
	}
	if cfg.Gateway.Metrics.Listen != n.cfg.Gateway.Metrics.Listen {
		needRestart = append(needRestart, "gateway.metrics.listen")
	}
	if cfg.Storage.Dir != n.cfg.Storage.Dir {
		needRestart = append(needRestart, "storage.dir")
	}
	if cfg.Federation.Enabled != n.cfg.Federation.Enabled {
		needRestart = append(needRestart, "federation.enabled")
	}
	if !slices.Equal(cfg.Gateway.AllowedOrigins, n.cfg.Gateway.AllowedOrigins) {
		needRestart = append(needRestart, "gateway.allowedOrigins")
	}
	if cfg.Gateway.Limits != n.cfg.Gateway.Limits {
		needRestart = append(needRestart, "gateway.limits")
	}
	if cfg.Gateway.Signing != n.cfg.Gateway.Signing {
		needRestart = append(needRestart, "gateway.signing")
	}
	if cfg.Federation.Durable != n.cfg.Federation.Durable {
		needRestart = append(needRestart, "federation.durable")
	}
	if !reflect.DeepEqual(cfg.Federation.Discovery, n.cfg.Federation.Discovery) {
		needRestart = append(needRestart, "federation.discovery")
	}
	if len(cfg.Agents) != len(n.cfg.Agents) {
		needRestart = append(needRestart, "agents")
	}
	return needRestart, nil
}
