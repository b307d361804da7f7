package federation

import "testing"

// KV bucket names and keys take letters, digits, '-' and '_' (and '.'
// between key tokens): every id has one token, and only that token reads
// back as the id.
func TestNATSBucketToken(t *testing.T) {
	for _, tt := range []struct{ id, tok string }{
		{"site-a", "site-a"},
		{"user@host:7000", "user_40host_3A7000"},
		{"a.b_c", "a_2Eb_5Fc"},
	} {
		if got := natsBucketToken(tt.id); got != tt.tok {
			t.Errorf("natsBucketToken(%q) = %q; want %q", tt.id, got, tt.tok)
		}
		if got, ok := natsUntoken(tt.tok); !ok || got != tt.id {
			t.Errorf("natsUntoken(%q) = %q, %v; want %q", tt.tok, got, ok, tt.id)
		}
	}
	for _, tok := range []string{"site_2Da", "a_2eb", "a_5", "a_zz"} { // another spelling, or malformed
		if id, ok := natsUntoken(tok); ok {
			t.Errorf("natsUntoken(%q) = %q; want refused", tok, id)
		}
	}
}
