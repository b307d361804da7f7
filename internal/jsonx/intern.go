package jsonx

import (
	"hash/maphash"
	"sync/atomic"
)

// Decoded messages repeat most of their short strings: object keys, agent
// and server ids, types and priorities. The intern table remembers the
// recently decoded ones, so that decoding them again allocates nothing,
// not even the interface value a map[string]any holds.
//
// The table is a fixed array of slots indexed by a seeded hash: a slot
// holds the last string that hashed to it, and a different string
// replaces it. Lookups and replacements are atomic, so decoders share it
// without locks; at worst two strings take turns in a slot and allocate
// as if there were no table.
const (
	internSlots = 4096
	internMax   = 32 // longer strings are mostly unique: ids, content
)

type interned struct {
	s string
	v any // s as an interface value, allocated once
}

var (
	internTable [internSlots]atomic.Pointer[interned]
	internSeed  = maphash.MakeSeed()
)

// intern returns the table's entry for b, adding one when b is not there.
// b must be at most internMax bytes.
func intern(b []byte) *interned {
	slot := &internTable[maphash.Bytes(internSeed, b)%internSlots]
	if e := slot.Load(); e != nil && e.s == string(b) {
		return e
	}
	s := string(b)
	e := &interned{s: s, v: s}
	slot.Store(e)
	return e
}

// internString returns b as a string, from the table when it is short.
func internString(b []byte) string {
	if len(b) > internMax {
		return string(b)
	}
	return intern(b).s
}
