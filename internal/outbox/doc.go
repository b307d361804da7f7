// Package outbox keeps a gateway's durable messages until they are
// delivered or given up: their entries on disk (the store's outbox bucket),
// their states (queued, delivered, failed, dead), the retries, the limits
// (federation.durable.maxAttempts and maxAgeMs, a message's ttlMs) and the
// retention of delivered entries.
//
// Every state change is on disk before it is acted on, so a queued message
// survives a crash and is attempted again after a restart. When each queued
// message is attempted is [schedule]'s decision: urgent first, then oldest,
// a jittered exponential backoff per message, and one probe at a time for a
// peer that does not answer.
//
// The outbox does not know what a message is or how to deliver one. Its
// owner (the federation package) gives it two functions in [Config]: Deliver
// makes one attempt now and reports how it went ([Report]: delivered, failed
// for good, or to be tried again, and whether the peer answered), and Rank
// gives a message's priority. The entries carry the owner's message and
// result types (M and R), so [Entry] is the JSON the store and the operators
// see. Outcomes that another path learns about (a dead letter over NATS,
// say) are recorded by message id with [Outbox.Finish] or written as they
// are with [Outbox.Put].
//
// An Outbox is safe for concurrent use. [Outbox.Run] delivers until its
// context ends; it is the only goroutine the outbox starts (with the
// attempts it runs, which it waits for).
package outbox
