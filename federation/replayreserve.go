package federation

import "time"

// A reservation is a stamp persisted as a sender's floor before any message
// stamped after the previous one is accepted, so that a crash forgets
// nothing: the guard records a message only once its stamp is at or below
// what is on disk (checkLocked), and after a crash load makes what is on
// disk the floor, so every message accepted before the crash is refused
// as REPLAYED after it, however far ahead the reservation reached.
//
// How far ahead it reaches only trades writes (each an fsynced bbolt
// transaction) for what a crash costs a legitimate sender: its messages
// stamped after the last one accepted but not after the reservation are
// refused once (retryable; the sender resends with a new stamp). A sender
// that sends now and then gets reserveAhead, as before; one that passes
// its reservation before it has passed it by the reservation's own reach
// is sending steadily, and its next reservation reaches twice as far, up
// to reserveAheadMax. A steady sender so costs a write every few seconds
// instead of one a second, and a gateway receiving from many steady
// senders (a broadcast's receivers) as many fewer; after a crash such a
// sender is refused for at most reserveAheadMax of its stamps.
const (
	reserveAhead    = time.Second
	reserveAheadMax = 8 * time.Second
)

// reservation is what is reserved on disk under one key.
type reservation struct {
	ts    int64 // Unix ms: the floor on disk
	ahead int64 // ms it reached beyond the stamp it was written for; 0: loaded or none
}

// next is the reservation to write for a message stamped ts, beyond r.ts,
// arriving at now (Unix ms).
func (r reservation) next(ts, now int64) reservation {
	ahead := reserveAhead.Milliseconds()
	if r.ahead > 0 && ts-r.ts <= r.ahead {
		ahead = min(2*r.ahead, reserveAheadMax.Milliseconds())
	}
	return reservation{ts: max(ts, now) + ahead, ahead: ahead}
}
