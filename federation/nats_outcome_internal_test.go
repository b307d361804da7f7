package federation

import "testing"

// An outcome refused for an entry still held (sent a moment ago, not
// written yet) leaves the entry held, still queued, to be written with the
// next batch: the sender was told the message is queued, and a forged or
// malformed outcome must not lose its only record.
func TestNATSRefusedOutcomeKeepsHeldEntry(t *testing.T) {
	n := newUnstartedNode(t)
	// No writer runs: what is held stays pending.
	h := &natsHolds{n: n, wake: make(chan struct{}, 1), pending: map[string]*OutboxEntry{}, batch: &holdBatch{done: make(chan struct{})}}
	l := &natsLink{durable: &natsDurable{holds: h}}
	for _, id := range []string{"m-forged", "m-malformed"} {
		h.hold(&OutboxEntry{MessageID: id, PeerID: "worker@site-r", State: StateQueued, Stream: "AF_DURABLE_site-r"})
	}
	b := &outcomeBatch{entries: map[string]*OutboxEntry{}}
	// From a gateway the message was not sent to, and from the right one
	// but failed without an error: both refused.
	if err := n.keepOutcomeBatch(l, b, "af.result.main.site-evil", []byte(`[{"messageId":"m-forged","state":"failed","error":{"code":"INTERNAL","message":"x"}}]`)); err != nil {
		t.Fatal(err)
	}
	if err := n.keepOutcomeBatch(l, b, "af.result.main.site-r", []byte(`[{"messageId":"m-malformed","state":"failed"}]`)); err != nil {
		t.Fatal(err)
	}
	if err := n.writeOutcomes(l, b); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"m-forged", "m-malformed"} {
		if e := h.peek(id); e == nil || e.State != StateQueued {
			t.Errorf("entry %s after a refused outcome: %+v; want still held, queued", id, e)
		}
	}
}
