package main

import (
	"strings"
	"testing"

	"github.com/agentfed/agentfed/internal/store"
)

func TestStoreForgetKey(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	must(t, st.Put(store.MeshKeys, "gw-a", []byte(`{"signingKey":"ed25519:x","firstSeen":1}`)))
	must(t, st.Put(store.MeshKeys, "gw-b", []byte(`{"signingKey":"ed25519:y","firstSeen":1}`)))
	must(t, st.Close())

	out, errOut, code := agentfed(t, "", "store", "forget-key", "--dir", dir, "gw-a")
	if code != 0 || !strings.Contains(out, `forgot the key first seen for gateway "gw-a"`) {
		t.Fatalf("forget-key gw-a: exit %d\n%s%s", code, out, errOut)
	}
	_, errOut, code = agentfed(t, "", "store", "forget-key", "--dir", dir, "gw-a")
	if code != 1 || !strings.Contains(errOut, `keeps no key first seen for gateway "gw-a"`) {
		t.Fatalf("forget-key gw-a again: exit %d\n%s", code, errOut)
	}
	st, err = store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	a, _ := st.Get(store.MeshKeys, "gw-a")
	b, _ := st.Get(store.MeshKeys, "gw-b")
	if a != nil || b == nil {
		t.Fatalf("after forget-key gw-a: gw-a %q, gw-b %q; want gw-a gone, gw-b kept", a, b)
	}
}
