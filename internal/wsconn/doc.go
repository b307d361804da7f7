// Package wsconn is the one home of agentfed's fast-wire machinery, which
// sits under and beside github.com/coder/websocket for the gateway and
// federation packages. Nothing here is part of agentfed's public API.
//
// Three parts, each measured in docs/BENCHMARKS.md against a plain
// reader goroutine per connection:
//
//   - [Conn] wraps a connection's net.Conn under the WebSocket library.
//     It batches writes (group commit; a server holds replies while its
//     reader handles what it read; a client corks with [Conn.Cork]).
//     A client's Conn ([NewClient]) also follows the server's frames so
//     that a caller reading its own answer can stop at a message
//     boundary: [Conn.InterruptRead] makes the read that starts there
//     fail with [ErrInterrupted], and [Conn.PollRead] makes it take only
//     what has arrived. [WriteGauge] and [Conn.Stalled] let a watchdog
//     find writes that make no progress.
//   - A gateway handler that implements [Inliner] is called on the
//     connection's reader goroutine, saving a goroutine start and a
//     scheduler wake-up per request. Until it calls [Detach] the
//     connection reads nothing else, not even request.cancel, so a
//     handler that may block (I/O, waiting, calling other gateways) must
//     call Detach first.
//   - An agent handler that is [Immediate] is what federation serves
//     inline; it detaches for everything else.
//
// Interruptible reads rely on behaviour coder/websocket does not
// document: a read of the underlying connection that fails at a message
// boundary is returned by the library with the WebSocket left usable.
// TestLibraryReadErrorAtBoundaryKeepsConnection pins it, so that a
// library upgrade that breaks it fails a test.
package wsconn
