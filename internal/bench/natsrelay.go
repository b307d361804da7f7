package bench

import (
	"context"
	"log/slog"

	"github.com/agentfed/agentfed/federation"
)

// startNATSRelayRTT starts two gateways with federation.transport nats: the
// main one embeds the nats-server, the peer joins it by URL and hosts the
// echo agent, which main reaches as echo@peer without a peers entry.
func startNATSRelayRTT(_ context.Context, o *Options, s *sample) (func(context.Context) error, func(), error) {
	g, err := newGateways(slog.New(slog.DiscardHandler))
	if err != nil {
		return nil, nil, err
	}
	main, err := g.start("main", false, nil, func(c *federation.Config) {
		c.Federation.Transport = federation.TransportNATS
		c.NATS.Embedded = &federation.NATSEmbeddedConfig{Listen: "127.0.0.1:0"}
	})
	if err != nil {
		g.close()
		return nil, nil, err
	}
	if _, err := g.start("peer", true, nil, func(c *federation.Config) {
		c.Federation.Transport = federation.TransportNATS
		c.NATS.URL = main.NATSClientURL()
	}); err != nil {
		g.close()
		return nil, nil, err
	}
	peer := echoAgent + "@peer"
	return func(ctx context.Context) error { return send(ctx, main, peer, s.content) }, func() { g.close() }, nil
}
