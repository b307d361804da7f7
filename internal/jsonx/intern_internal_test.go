package jsonx

import (
	"hash/maphash"
	"testing"
)

// Short strings and keys decoded again come from the intern table: a map
// whose keys and short values repeat decodes with only the map's own
// allocations. The table's seed is chosen so that the six strings have a
// slot each: two sharing a slot would take turns in it and allocate, as
// they may, rarely, under a random seed.
func TestInternedDecodingAllocatesOnlyTheMap(t *testing.T) {
	strs := []string{"fromAgent", "planner", "type", "request", "priority", "normal"}
	saved := internSeed
	defer func() { internSeed = saved }()
	for distinct := false; !distinct; {
		internSeed = maphash.MakeSeed()
		slots := map[uint64]bool{}
		for _, s := range strs {
			slots[maphash.String(internSeed, s)%internSlots] = true
		}
		distinct = len(slots) == len(strs)
	}
	data := []byte(`{"fromAgent":"planner","type":"request","priority":"normal"}`)
	var d Decoder
	d.Reset(data)
	if _, err := d.ReadMap(nil); err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(100, func() {
		d.Reset(data)
		d.ReadMap(nil)
	})
	empty := testing.AllocsPerRun(100, func() {
		d.Reset([]byte(`{}`))
		d.ReadMap(nil)
	})
	// Three entries fit in the map's first group, allocated with it.
	if allocs > empty+1 {
		t.Errorf("decoding a map of repeated short strings allocates %v times, an empty map %v; want at most one more", allocs, empty)
	}
}
