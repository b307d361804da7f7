package wsconn

import "context"

// Inliner is implemented by a gateway handler whose requests the server
// calls on the connection's reader goroutine. ServesInline reports whether
// it wants that; the server asks once per connection.
type Inliner interface {
	ServesInline() bool
}

// Immediate is implemented by an agent handler that answers at once,
// without I/O or waiting, such as agent.Echo. When Immediate returns true,
// federation answers the agent's messages on the reader goroutine, with
// no deadline of their own (they are not expected to wait); they still end
// when the connection does. Other handlers run on a goroutine of their
// own.
type Immediate interface {
	Immediate() bool
}

// A Detacher is found in the context of a request served on a reader
// goroutine. Its Detach does what [Detach] says; ctx is the context the
// handler holds, which the result derives from.
type Detacher interface {
	Detach(ctx context.Context) context.Context
}

// DetachKey is the context key under which a request served inline finds
// its Detacher: ctx.Value(DetachKey{}) returns it.
type DetachKey struct{}

// Detach lets the handler serving ctx block: when ctx is a request served
// on the connection's reader goroutine, it hands reading to a new
// goroutine, so the connection's other requests go on being read and
// served meanwhile, and returns the context to use from then on (which
// request.cancel ends). Called again, or outside an inline handler, it
// returns ctx. Call it on the handler's goroutine, before blocking.
func Detach(ctx context.Context) context.Context {
	if d, ok := ctx.Value(DetachKey{}).(Detacher); ok {
		return d.Detach(ctx)
	}
	return ctx
}
