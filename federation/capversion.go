package federation

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/Masterminds/semver/v3"

	"github.com/agentfed/agentfed/gateway"
)

// Capability versions.
//
// A capability is a name with an optional semantic version after an "@":
// "web-search" or "web-search@2.1.0" (MAJOR.MINOR.PATCH, with an optional
// pre-release and build, as semver.org defines them). A requirement, an
// entry of delegate's requiredCapabilities, is a name with an optional
// constraint after the "@": "web-search", "web-search@^2",
// "web-search@>=2.1 <3", "web-search@~2.1 || ^3". An unversioned
// requirement is met by any capability of that name, versioned or not; a
// constrained one only by a version that satisfies it (an unversioned
// capability promises no version, so it meets no constraint). Constraints
// follow github.com/Masterminds/semver/v3: a pre-release version satisfies
// only a constraint that itself names a pre-release.

// maxRequirements bounds the entries of one requiredCapabilities; each is
// at most maxCapabilityBytes, like a capability.
const maxRequirements = 64

// capability is one parsed capability of a peer or agent.
type capability struct {
	name    string
	version *semver.Version // nil: unversioned
}

// requirement is one parsed entry of requiredCapabilities.
type requirement struct {
	raw        string // as written, for messages
	name       string
	constraint *semver.Constraints // nil: any version
}

// splitCapability splits s at its last "@" into a name and what follows.
// Versions and constraints never hold an "@", names may.
func splitCapability(s string) (name, version string, versioned bool) {
	i := strings.LastIndexByte(s, '@')
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+1:], true
}

// parseCapability parses a capability such as "web-search@2.1.0". The
// error says what is wrong, without the field's path.
func parseCapability(s string) (capability, error) {
	if err := checkCapabilityName(s); err != nil {
		return capability{}, err
	}
	name, ver, versioned := splitCapability(s)
	if !versioned {
		return capability{name: s}, nil
	}
	if strings.TrimSpace(name) == "" {
		return capability{}, fmt.Errorf("%q has no name before the @; write it like web-search@2.1.0", s)
	}
	if ver == "" {
		return capability{}, fmt.Errorf("%q has no version after the @; write it like %s@2.1.0, or leave out the @", s, name)
	}
	v, err := semver.StrictNewVersion(ver)
	if err != nil {
		return capability{}, fmt.Errorf("%q: version %q is not a semantic version (%v); write MAJOR.MINOR.PATCH, like %s@2.1.0", s, ver, err, name)
	}
	return capability{name: name, version: v}, nil
}

// parseRequirement parses a requirement such as "web-search@^2". The error
// says what is wrong, without the field's path.
func parseRequirement(s string) (requirement, error) {
	if err := checkCapabilityName(s); err != nil {
		return requirement{}, err
	}
	name, con, versioned := splitCapability(s)
	if !versioned {
		return requirement{raw: s, name: s}, nil // no allocation: the common case
	}
	if strings.TrimSpace(name) == "" {
		return requirement{}, fmt.Errorf("%q has no name before the @; write it like web-search@^2", s)
	}
	if strings.TrimSpace(con) == "" {
		return requirement{}, fmt.Errorf("%q has no version constraint after the @; write it like %s@^2, or leave out the @ for any version", s, name)
	}
	c, err := constraints.parse(con)
	if err != nil {
		return requirement{}, fmt.Errorf("%q: %q is not a version constraint (%v); write it like %s@^2 or %s@>=2.1 <3", s, con, err, name, name)
	}
	return requirement{raw: s, name: name, constraint: c}, nil
}

// constraintCache remembers parsed constraints: parsing one takes
// regular expressions and some 40 allocations, far more than checking
// thousands of peers against it, and delegate calls repeat the same few.
// A parsed constraint is only read afterwards, so it can be shared.
type constraintCache struct {
	mu sync.Mutex // guards m
	m  map[string]*semver.Constraints
}

// maxCachedConstraints bounds the cache; when full it starts over.
const maxCachedConstraints = 1024

var constraints constraintCache

func (cc *constraintCache) parse(s string) (*semver.Constraints, error) {
	cc.mu.Lock()
	c := cc.m[s]
	cc.mu.Unlock()
	if c != nil {
		return c, nil
	}
	c, err := semver.NewConstraint(s)
	if err != nil {
		return nil, err
	}
	cc.mu.Lock()
	if cc.m == nil || len(cc.m) >= maxCachedConstraints {
		cc.m = make(map[string]*semver.Constraints)
	}
	cc.m[s] = c
	cc.mu.Unlock()
	return c, nil
}

// checkCapabilityName refuses what is no capability at all: empty, blank,
// or too long to be one.
func checkCapabilityName(s string) error {
	switch {
	case strings.TrimSpace(s) == "":
		return fmt.Errorf("empty capability; name it or remove the entry")
	case len(s) > maxCapabilityBytes:
		return fmt.Errorf("%q is %d bytes, over the %d-byte limit of a capability", clip(s, 40), len(s), maxCapabilityBytes)
	}
	return nil
}

// parseRequirements parses delegate's requiredCapabilities, appending to
// dst (a caller's buffer, so that a delegate allocates nothing for them);
// errors name the entry, like requiredCapabilities[1].
func parseRequirements(dst []requirement, reqs []string) ([]requirement, error) {
	if len(reqs) == 0 {
		return nil, fmt.Errorf("%w: requiredCapabilities must name at least one capability", ErrInvalidParams)
	}
	if len(reqs) > maxRequirements {
		return nil, fmt.Errorf("%w: requiredCapabilities has %d entries, over the limit of %d", ErrInvalidParams, len(reqs), maxRequirements)
	}
	for i, s := range reqs {
		r, err := parseRequirement(s)
		if err != nil {
			return nil, fmt.Errorf("%w: requiredCapabilities[%d]: %v", ErrInvalidParams, i, err)
		}
		dst = append(dst, r)
	}
	return dst, nil
}

// parseCapabilities parses a peer's or agent's capabilities, leaving out
// the ones that do not parse, and reports whether every one did. Config
// validation refuses unparsable ones; this keeps peers stored before
// versions existed, and what a remote gateway advertises, usable.
func parseCapabilities(caps []string) ([]capability, bool) {
	out := make([]capability, 0, len(caps))
	ok := true
	for _, s := range caps {
		c, err := parseCapability(s)
		if err != nil {
			ok = false
			continue
		}
		out = append(out, c)
	}
	return out, ok
}

// metBy reports whether one of caps meets r.
func (r *requirement) metBy(caps []capability) bool {
	for i := range caps {
		c := &caps[i]
		if c.name == r.name && (r.constraint == nil || c.version != nil && r.constraint.Check(c.version)) {
			return true
		}
	}
	return false
}

// meetsAll reports whether caps meet every requirement.
func meetsAll(caps []capability, reqs []requirement) bool {
	for i := range reqs {
		if !reqs[i].metBy(caps) {
			return false
		}
	}
	return true
}

// maxVersionsShown bounds the versions a NO_CAPABLE_PEER error lists.
const maxVersionsShown = 16

// UnmetRequirement is the details of a NO_CAPABLE_PEER error when one
// requirement is met by no enabled peer: which one, and which versions of
// that capability the enabled peers have.
type UnmetRequirement struct {
	Requirement string `json:"requirement"` // as given in requiredCapabilities
	Index       int    `json:"index"`       // its position there
	// Versions are the distinct versions of the capability among the
	// enabled peers, ascending; at most 16, MoreVersions counts the rest.
	Versions     []string `json:"versions"`
	MoreVersions int      `json:"moreVersions,omitempty"`
	// Unversioned: some enabled peer has the capability without a version.
	Unversioned bool `json:"unversioned,omitempty"`
}

// noCapablePeer explains why no enabled peer meets every requirement: the
// first requirement that no enabled peer meets on its own (with the
// versions of that capability they do have, in the error's details as an
// UnmetRequirement), or else that no single peer meets them all.
func (r *registry) noCapablePeer(reqs []requirement) error {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for i := range reqs {
		q := &reqs[i]
		var seen [][]capability // the enabled peers that have the name
		met := false
		for _, p := range r.byCap[q.name] {
			if !p.IsEnabled() {
				continue
			}
			if met = q.metBy(p.caps); met {
				break
			}
			seen = append(seen, p.caps)
		}
		if met {
			continue
		}
		d := UnmetRequirement{Requirement: q.raw, Index: i}
		d.Versions, d.Unversioned, d.MoreVersions = versionsOf(q.name, seen)
		msg := fmt.Sprintf("no enabled peer has capability %q (requiredCapabilities[%d]); check the spelling (case-sensitive) against list_peers (`agentfed peers`)", q.name, i)
		if len(seen) > 0 {
			msg = fmt.Sprintf("no enabled peer has %q (requiredCapabilities[%d]); the enabled peers have %q %s; relax the constraint, or see list_peers (`agentfed peers`)",
				q.raw, i, q.name, describeVersions(d))
		}
		return &gateway.Error{Code: CodeNoCapablePeer, Message: ErrNoCapablePeer.Message + ": " + msg, Details: d}
	}
	// The one failure delegate-select's benchmark times: built by hand, in
	// one buffer.
	var b strings.Builder
	b.Grow(len(ErrNoCapablePeer.Message) + 160 + 8*len(reqs))
	b.WriteString(ErrNoCapablePeer.Message)
	b.WriteString(": no single enabled peer has all of [")
	for i := range reqs {
		if i > 0 {
			b.WriteByte(' ')
		}
		if b.Len() > 512 {
			b.WriteString("…")
			break
		}
		b.WriteString(strconv.Quote(reqs[i].raw))
	}
	b.WriteString("], though each is met by some peer; see list_peers (`agentfed peers`)")
	return &gateway.Error{Code: CodeNoCapablePeer, Message: b.String()}
}

// describeVersions says which versions d found: "at 1.4.0, 2.1.0 (and 3
// more), and without a version", or "only without a version".
func describeVersions(d UnmetRequirement) string {
	if len(d.Versions) == 0 {
		return "only without a version"
	}
	s := "at " + strings.Join(d.Versions, ", ")
	if d.MoreVersions > 0 {
		s += fmt.Sprintf(" (and %d more)", d.MoreVersions)
	}
	if d.Unversioned {
		s += ", and without a version"
	}
	return s
}

// versionsOf returns the distinct versions of capability name among the
// capability lists, ascending, at most maxVersionsShown of them; whether
// one of them has that capability without a version; and how many
// versions were left out.
func versionsOf(name string, lists [][]capability) (versions []string, unversioned bool, more int) {
	var vs []*semver.Version
	for _, caps := range lists {
		for _, c := range caps {
			switch {
			case c.name != name:
			case c.version == nil:
				unversioned = true
			default:
				vs = append(vs, c.version)
			}
		}
	}
	slices.SortFunc(vs, func(a, b *semver.Version) int { return a.Compare(b) })
	vs = slices.CompactFunc(vs, func(a, b *semver.Version) bool { return a.Equal(b) })
	versions = []string{}
	for _, v := range vs {
		if len(versions) == maxVersionsShown {
			more++
			continue
		}
		versions = append(versions, v.String())
	}
	return versions, unversioned, more
}

// grantAllows reports whether one of an agent's capabilities (have) meets
// one of a gateway.auth.peers entry's allowCapabilities, each a
// requirement: "web-search" allows the agent whatever its version,
// "web-search@^2" only at a version within ^2. Only constrained entries
// parse versions, so the common case allocates nothing.
func grantAllows(allow, have []string) bool {
	for _, a := range allow {
		q, err := parseRequirement(a)
		if err != nil {
			continue // refused by Validate; never allows
		}
		for _, h := range have {
			if name, _, _ := splitCapability(h); name != q.name {
				continue
			}
			if q.constraint == nil {
				return true
			}
			if c, err := parseCapability(h); err == nil && q.metBy([]capability{c}) {
				return true
			}
		}
	}
	return false
}
