// Package schedule decides when each queued durable message is attempted:
// which is due next (urgent first, then oldest), how long a failed one
// waits (a jittered exponential backoff of its own), and which are held
// back because their peer does not answer (one message at a time probes a
// down peer; the rest wait in memory until it answers).
//
// It keeps a small [Item] per message, never the message: the outbox
// package stores messages on disk, has federation deliver them and tells
// the [Schedule] how each attempt went. A Schedule is not safe for
// concurrent use; its owner holds a mutex around every call.
package schedule
