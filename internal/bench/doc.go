// Package bench measures agentfed against its performance targets: how close
// the federation's relay path comes to a bare WebSocket round trip and to
// NATS request-reply, how throughput, broadcast and memory grow with peers,
// and how fast delegate picks a peer among many.
//
// Run starts everything it measures in this process, on 127.0.0.1 only:
// real federation.Nodes (the same code `agentfed serve` runs) with the
// built-in echo agent, a bare coder/websocket echo server, and an embedded
// nats-server. It needs no configuration and leaves nothing behind. Every
// ratio in a Report is computed from figures of the same run, because
// absolute times vary from machine to machine.
//
// The figures are only as quiet as the machine: run nothing else meanwhile.
// Run is not safe for concurrent use with itself (the figures would disturb
// each other), and it raises the process's open-file soft limit when the
// memory measurement needs more descriptors.
package bench
