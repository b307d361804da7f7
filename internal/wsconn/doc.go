// Package wsconn holds the contract of agentfed's fast wire between the
// gateway package, which owns the WebSocket connections, and the
// federation package, which serves requests on them. Nothing here is part
// of agentfed's public API.
//
// A gateway server reads each connection's requests on one goroutine. A
// handler that implements [Inliner] is called on that goroutine, which
// saves a goroutine start and a scheduler wake-up per request; until it
// calls [Detach], the connection reads nothing else, not even
// request.cancel, so a handler that may block (I/O, waiting for other
// work, calling other gateways) must call Detach first. Federation's own
// handler serves an agent whose handler is [Immediate] inline, and
// detaches for everything else.
//
// docs/BENCHMARKS.md ("Who reads the answer") measures what this saves
// against a plain reader goroutine per connection.
package wsconn
