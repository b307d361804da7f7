package jsonx_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/agentfed/agentfed/internal/jsonx"
)

// Many more distinct strings than the table has slots, decoded from many
// goroutines at once: every string is still its own, whichever string last
// took its slot (run with -race).
func TestInternedStringsStayCorrect(t *testing.T) {
	const goroutines, distinct = 8, 20000
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			var d jsonx.Decoder
			for i := range distinct {
				n := (i*7 + g) % distinct // the goroutines overlap, in different orders
				key := fmt.Sprintf("k%d", n)
				val := fmt.Sprintf("v%d", n%50) // values repeat, keys mostly not
				long := strings.Repeat("x", 40) + key
				d.Reset(fmt.Appendf(nil, `{%q:%q,"long":%q,"s":%q}`, key, val, long, key))
				m, err := d.ReadMap(nil)
				if err != nil {
					t.Error(err)
					return
				}
				if m[key] != val || m["long"] != long || m["s"] != key || len(m) != 3 {
					t.Errorf("decoded %v, want %s: %s, long: %s, s: %s", m, key, val, long, key)
					return
				}
				d.Reset(fmt.Appendf(nil, "%q", key))
				if s, err := d.ReadName(); err != nil || s != key {
					t.Errorf("ReadName = %q, %v; want %q", s, err, key)
					return
				}
			}
		})
	}
	wg.Wait()
}

// An escaped string is interned by its decoded value.
func TestInternedEscapedString(t *testing.T) {
	var d jsonx.Decoder
	for _, in := range []string{`{"a\u0062":"\u00e9t\u00e9"}`, `{"ab":"été"}`} {
		d.Reset([]byte(in))
		m, err := d.ReadMap(nil)
		if err != nil || len(m) != 1 || m["ab"] != "été" {
			t.Errorf("ReadMap(%s) = %v, %v; want map[ab:été]", in, m, err)
		}
	}
}
