// Package natsbus connects a gateway to a NATS system: either an external
// one (a nats:// URL and a standard credentials file) or a nats-server the
// gateway embeds, optionally clustered and with JetStream.
//
// It owns the NATS mechanics only (servers, connections, subjects); what
// travels on them is the federation package's business. A Bus is safe for
// concurrent use; Close waits for the embedded server to stop.
package natsbus
