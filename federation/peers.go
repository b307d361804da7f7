package federation

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/agentfed/agentfed/internal/store"
)

// Peer sources, as list_peers reports them.
const (
	SourceStatic  = "static"  // from federation.peers in the config file
	SourceDynamic = "dynamic" // added by register_peer, kept in storage.dir
)

type peer struct {
	PeerConfig
	source string
	caps   []capability // Capabilities parsed; unparsable ones left out
}

func newPeer(c PeerConfig, source string) *peer {
	caps, _ := parseCapabilities(c.Capabilities)
	return &peer{PeerConfig: c, source: source, caps: caps}
}

// registry holds the static and dynamic peers and a capability index.
type registry struct {
	st *store.Store

	mu    sync.RWMutex // guards byID and byCap
	byID  map[string]*peer
	byCap map[string][]*peer // capability name (without version) -> its peers, sorted by id

	skipped []string // stored dynamic peers not loaded: their URLs hold credentials
}

func newRegistry(static []PeerConfig, st *store.Store) (*registry, error) {
	r := &registry{st: st, byID: make(map[string]*peer), byCap: make(map[string][]*peer)}
	for _, p := range static {
		r.addLocked(newPeer(p, SourceStatic))
	}
	err := st.ForEach(store.Peers, func(id string, v []byte) error {
		var p PeerConfig
		if err := json.Unmarshal(v, &p); err != nil {
			return fmt.Errorf("dynamic peer %q in storage: %w", id, err)
		}
		if hasUserinfo(p.URL) {
			// Registered before URLs with credentials were refused: not
			// loaded, so that the password shows nowhere (see skipped).
			r.skipped = append(r.skipped, p.ID)
			return nil
		}
		if _, clash := r.byID[p.ID]; clash {
			// A static peer now has this id: the config file wins.
			return nil
		}
		r.addLocked(newPeer(p, SourceDynamic))
		return nil
	})
	return r, err
}

func (r *registry) addLocked(p *peer) {
	r.byID[p.ID] = p
	for _, c := range p.caps {
		list := r.byCap[c.name]
		if i, found := slices.BinarySearchFunc(list, p.ID, byPeerID); !found {
			r.byCap[c.name] = slices.Insert(list, i, p)
		}
	}
}

func (r *registry) removeLocked(p *peer) {
	delete(r.byID, p.ID)
	for _, c := range p.caps {
		list := r.byCap[c.name]
		if i, found := slices.BinarySearchFunc(list, p.ID, byPeerID); found {
			list = slices.Delete(list, i, i+1)
		}
		if len(list) == 0 {
			delete(r.byCap, c.name)
		} else {
			r.byCap[c.name] = list
		}
	}
}

func byPeerID(p *peer, id string) int { return strings.Compare(p.ID, id) }

func (r *registry) get(id string) *peer {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.byID[id]
}

// list returns every peer, ordered by id.
func (r *registry) list() []*peer {
	r.mu.RLock()
	out := make([]*peer, 0, len(r.byID))
	for _, p := range r.byID {
		out = append(out, p)
	}
	r.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// capable returns the enabled peers that meet every requirement (names
// exact and case-sensitive, versions within the constraints), ordered by
// id. It walks only the peers of the rarest capability name.
func (r *registry) capable(reqs []requirement) []*peer {
	r.mu.RLock()
	var smallest []*peer
	for i := range reqs {
		list := r.byCap[reqs[i].name]
		if i == 0 || len(list) < len(smallest) {
			smallest = list
		}
	}
	var out []*peer
	for _, p := range smallest { // sorted by id, and so is out
		if p.IsEnabled() && meetsAll(p.caps, reqs) {
			out = append(out, p)
		}
	}
	r.mu.RUnlock()
	return out
}

// register adds a dynamic peer and persists it before it becomes visible;
// at most limit dynamic peers may exist.
func (r *registry) register(p PeerConfig, limit int) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if old := r.byID[p.ID]; old != nil {
		return fmt.Errorf("%w: a %s peer named %q already exists; pick another peerId or unregister it first", ErrPeerExists, old.source, p.ID)
	}
	dynamic := 0
	for _, q := range r.byID {
		if q.source == SourceDynamic {
			dynamic++
		}
	}
	if dynamic >= limit {
		return fmt.Errorf("%w: %d dynamic peers are registered, the limit of federation.maxDynamicPeers; unregister one first, or raise the limit", ErrOverloaded, dynamic)
	}
	b, err := json.Marshal(p)
	if err != nil {
		return err
	}
	if err := r.st.Put(store.Peers, p.ID, b); err != nil {
		return fmt.Errorf("save dynamic peer %q: %w", p.ID, err)
	}
	r.addLocked(newPeer(p, SourceDynamic))
	return nil
}

// unregister removes a dynamic peer from memory and storage.
func (r *registry) unregister(id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.byID[id]
	switch {
	case p == nil:
		return fmt.Errorf("%w: no peer named %s; see the peers with list_peers (`agentfed peers`)", ErrUnknownPeer, quoteBounded(id))
	case p.source == SourceStatic:
		return fmt.Errorf("%w: peer %q comes from the config file (federation.peers) and cannot be unregistered; remove it there or set enabled: false", ErrStaticPeer, id)
	case p.source == SourceDiscovered:
		return fmt.Errorf("%w: peer %q was discovered by mDNS and accepted by federation.discovery.accept; it goes when its gateway leaves, or remove the rule", ErrStaticPeer, id)
	}
	if err := r.st.Delete(store.Peers, id); err != nil {
		return fmt.Errorf("delete dynamic peer %q: %w", id, err)
	}
	r.removeLocked(p)
	return nil
}

// replaceStatic swaps in a new set of static peers, keeping dynamic ones
// (a dynamic peer whose id a static one now takes is hidden until the
// static one goes). It returns the ids whose configuration changed.
func (r *registry) replaceStatic(static []PeerConfig) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	next := make(map[string]PeerConfig, len(static))
	for _, p := range static {
		next[p.ID] = p
	}
	var changed []string
	for id, old := range r.byID {
		if old.source != SourceStatic {
			continue
		}
		if p, ok := next[id]; !ok || !samePeer(old.PeerConfig, p) {
			r.removeLocked(old)
			changed = append(changed, id)
		}
	}
	for _, p := range static {
		if old, ok := r.byID[p.ID]; ok {
			if old.source == SourceStatic {
				continue // unchanged
			}
			r.removeLocked(old)
		}
		if !slices.Contains(changed, p.ID) {
			changed = append(changed, p.ID)
		}
		r.addLocked(newPeer(p, SourceStatic))
	}
	return changed
}

func samePeer(a, b PeerConfig) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}
