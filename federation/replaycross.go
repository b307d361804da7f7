package federation

import "fmt"

// seenElsewhere refuses msg when its id is remembered from the same sender
// in the other pool than authenticated picks: a message that came through
// the mesh and is passed on directly, or the other way round, lands in
// another pool, and is a repeat all the same.
func (g *replayGuard) seenElsewhere(msg *Message, authenticated bool) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	pool := g.auth
	if authenticated {
		pool = g.unauth
	}
	if set := pool[msg.FromServer]; set != nil {
		if _, dup := set.seen[msg.MessageID]; dup {
			return fmt.Errorf("%w: message %q from %q was already received", ErrReplayed, msg.MessageID, msg.FromServer)
		}
	}
	return nil
}
