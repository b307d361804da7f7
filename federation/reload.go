package federation

// Reload applies a new configuration's credentials and static peers
// without a restart: gateway.auth (operator token, peer tokens and
// previous tokens, grants) takes effect for new connections at once, and
// a static peer whose settings changed (a new token, say) is redialled.
// Other settings need a restart; Reload says which of them differ.
func (n *Node) Reload(cfg *Config) (needRestart []string, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	auth := cfg.Gateway.Auth
	n.authCfg.Store(&auth)
	for _, id := range n.peers.replaceStatic(cfg.Federation.Peers) {
		n.pool.Drop(id)
		n.tracker.forget(id)
	}
	n.log.Info("configuration reloaded", "peerCredentials", len(auth.Peers), "staticPeers", len(cfg.Federation.Peers),
		"operatorToken", auth.OperatorToken != "")
	if cfg.Gateway.Listen != n.cfg.Gateway.Listen {
		needRestart = append(needRestart, "gateway.listen")
	}
	if cfg.Storage.Dir != n.cfg.Storage.Dir {
		needRestart = append(needRestart, "storage.dir")
	}
	if cfg.Federation.Enabled != n.cfg.Federation.Enabled {
		needRestart = append(needRestart, "federation.enabled")
	}
	if cfg.Gateway.Signing != n.cfg.Gateway.Signing {
		needRestart = append(needRestart, "gateway.signing")
	}
	if len(cfg.Agents) != len(n.cfg.Agents) {
		needRestart = append(needRestart, "agents")
	}
	return needRestart, nil
}
