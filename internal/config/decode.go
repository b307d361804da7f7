package config

import (
	"fmt"
	"reflect"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/agentfed/agentfed/federation"
)

// maxVisits bounds the nodes one decoding visits. Aliases let a small file
// name the same node many times over; past this many visits the file is
// rejected rather than expanded.
const maxVisits = 1 << 18

// maxMergeDepth bounds how deeply merge keys (<<) may nest.
const maxMergeDepth = 16

// maxProblems bounds the problems reported for one file. Only a file built
// to produce problems, mostly through aliases, reaches it.
const maxProblems = 200

// decoder walks a YAML node tree alongside the Go value it fills, reporting
// every unknown key and wrongly typed value with its path and line, where a
// plain yaml.Unmarshal would stop at the first.
type decoder struct {
	problems []federation.Problem
	reported map[federation.Problem]bool // problems already in problems
	dropped  int                         // problems past maxProblems, not kept
	lines    map[string]int              // field path -> line it is written on
	skip     map[string]bool             // paths whose validation problems would repeat a decoding problem
	visits   int                         // nodes visited so far
}

func newDecoder() *decoder {
	return &decoder{
		reported: map[federation.Problem]bool{},
		lines:    map[string]int{},
		skip:     map[string]bool{},
	}
}

// add records a problem, once however often aliases lead to it, and counts
// rather than keeps problems past maxProblems.
func (d *decoder) add(path string, line int, format string, args ...any) {
	p := federation.Problem{Path: path, Line: line, Message: fmt.Sprintf(format, args...)}
	switch {
	case d.reported[p]:
	case len(d.problems) >= maxProblems:
		d.dropped++
	default:
		d.reported[p] = true
		d.problems = append(d.problems, p)
	}
}

// root decodes the document's top node into v, a federation.Config.
func (d *decoder) root(n *yaml.Node, v reflect.Value) {
	n = d.resolve(n, "")
	switch {
	case n == nil || isNull(n):
	case n.Kind != yaml.MappingNode:
		d.add("", n.Line, "expected a mapping of sections (federation, gateway, agents, storage), got %s", describe(n))
	default:
		d.mapping(n, v, "")
	}
}

// decode fills v from n, reporting what does not fit. It reports whether v
// was set without problems.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) bool {
	n = d.resolve(n, path)
	if n == nil {
		return false
	}
	if isNull(n) {
		return true // leave the zero value, which means "default"
	}
	switch v.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return d.wrongType(n, v, path)
		}
		d.mapping(n, v, path)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return d.wrongType(n, v, path)
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, e := range n.Content {
			ep := fmt.Sprintf("%s[%d]", path, i)
			d.lines[ep] = e.Line
			d.decode(e, s.Index(i), ep)
		}
		v.Set(s)
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return d.wrongType(n, v, path)
		}
		d.dict(n, v, path)
	case reflect.Pointer:
		e := reflect.New(v.Type().Elem())
		if !d.decode(n, e.Elem(), path) {
			return false
		}
		v.Set(e)
	default:
		if n.Kind != yaml.ScalarNode || n.Decode(v.Addr().Interface()) != nil {
			return d.wrongType(n, v, path)
		}
	}
	return true
}

// resolve follows aliases and counts the visit. It returns nil, having
// reported why, when the node cannot be decoded at all.
func (d *decoder) resolve(n *yaml.Node, path string) *yaml.Node {
	d.visits++
	if d.visits > maxVisits {
		if d.visits == maxVisits+1 {
			d.add("", 0, "the file expands, through aliases (*name), to more than %d values; write the repeated values out", maxVisits)
			d.skip[""] = true // the configuration is incomplete; validating it would mislead
		}
		return nil
	}
	for hops := 0; n.Kind == yaml.AliasNode; hops++ {
		if n.Alias == nil || hops > 100 {
			d.add(path, n.Line, "alias %q does not resolve to a value", n.Value)
			d.skip[path] = true
			return nil
		}
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// wrongType reports that n does not fit v and returns false.
func (d *decoder) wrongType(n *yaml.Node, v reflect.Value, path string) bool {
	t := v.Type()
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	var want, hint string
	switch t.Kind() {
	case reflect.Struct, reflect.Map:
		want = "a mapping"
	case reflect.Slice:
		want = "a list"
		if n.Kind == yaml.ScalarNode {
			hint = fmt.Sprintf("; write a single value as a one-item list, like [%s]", clip(n.Value))
		}
	case reflect.Bool:
		want = "true or false"
	case reflect.Int:
		want = "a whole number"
	default:
		want = "a string"
	}
	d.add(path, n.Line, "expected %s, got %s%s", want, describe(n), hint)
	d.skip[path] = true
	return false
}

// describe names what n is, for error messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	return fmt.Sprintf("%q", clip(n.Value))
}

// clip shortens s for an error message.
func clip(s string) string {
	const limit = 40
	if r := []rune(s); len(r) > limit {
		return string(r[:limit]) + "..."
	}
	return s
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// entry is one key and value of a mapping.
type entry struct {
	key, value *yaml.Node
	merged     bool // comes from a merge key (<<), so the mapping's own keys override it
}

// mapping fills the struct v from the mapping n.
func (d *decoder) mapping(n *yaml.Node, v reflect.Value, path string) {
	fields := fieldsOf(v.Type())
	entries := d.entries(n, path, []*yaml.Node{n})
	present := make(map[string]bool, len(entries))
	for _, e := range entries {
		present[e.key.Value] = true
	}
	seen := make(map[string]int, len(entries)) // key -> line of its first occurrence
	for _, e := range entries {
		key := e.key.Value
		kp := joinPath(path, key)
		if first, dup := seen[key]; dup {
			if !e.merged {
				d.add(kp, e.key.Line, "duplicate key (first at line %d); keep only one", first)
			}
			continue
		}
		seen[key] = e.key.Line
		i, ok := fieldIndex(fields, key)
		if !ok {
			d.unknownKey(e.key, path, fields, present)
			continue
		}
		d.lines[kp] = e.key.Line
		d.decode(e.value, v.Field(i), kp)
	}
}

// dict fills the string-keyed map v from the mapping n: names chosen by the
// user, such as environment variables, rather than fields.
func (d *decoder) dict(n *yaml.Node, v reflect.Value, path string) {
	m := reflect.MakeMap(v.Type())
	seen := make(map[string]int) // key -> line of its first occurrence
	for _, e := range d.entries(n, path, []*yaml.Node{n}) {
		key := e.key.Value
		kp := joinPath(path, key)
		if first, dup := seen[key]; dup {
			if !e.merged {
				d.add(kp, e.key.Line, "duplicate key (first at line %d); keep only one", first)
			}
			continue
		}
		seen[key] = e.key.Line
		d.lines[kp] = e.key.Line
		ev := reflect.New(v.Type().Elem()).Elem()
		if d.decode(e.value, ev, kp) {
			m.SetMapIndex(reflect.ValueOf(key), ev)
		}
	}
	v.Set(m)
}

// entries lists the key/value pairs of mapping n: its own pairs first, then
// those merged in through merge keys (<<), in the order YAML gives them
// precedence. Keys that are not strings are reported and left out. stack
// holds n and the mappings that merge it.
func (d *decoder) entries(n *yaml.Node, path string, stack []*yaml.Node) []entry {
	var own, merged []entry
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := d.resolve(n.Content[i], path)
		if k == nil {
			continue
		}
		if k.Kind != yaml.ScalarNode {
			d.add(path, k.Line, "a key is %s; keys must be plain strings", describe(k))
			continue
		}
		if k.ShortTag() == "!!merge" {
			merged = append(merged, d.merge(n.Content[i+1], path, stack)...)
			continue
		}
		own = append(own, entry{key: k, value: n.Content[i+1]})
	}
	return append(own, merged...)
}

// merge returns the entries a merge key's value brings in: one mapping, or a
// list of mappings of which earlier ones take precedence.
func (d *decoder) merge(v *yaml.Node, path string, stack []*yaml.Node) []entry {
	if len(stack) > maxMergeDepth {
		d.add(path, v.Line, "merge keys (<<) nest more than %d deep; write the values out", maxMergeDepth)
		return nil
	}
	v = d.resolve(v, path)
	if v == nil {
		return nil
	}
	sources := []*yaml.Node{v}
	if v.Kind == yaml.SequenceNode {
		sources = v.Content
	}
	var out []entry
	for _, src := range sources {
		src = d.resolve(src, path)
		if src == nil {
			continue
		}
		if src.Kind != yaml.MappingNode {
			d.add(path, src.Line, "a merge key (<<) must merge a mapping or a list of mappings, got %s", describe(src))
			continue
		}
		if slices.Contains(stack, src) {
			d.add(path, v.Line, "a merge key (<<) merges a mapping into itself; merge a different mapping")
			continue
		}
		for _, e := range d.entries(src, path, append(stack[:len(stack):len(stack)], src)) {
			e.merged = true
			out = append(out, e)
		}
	}
	return out
}

// unknownKey reports a key that names no field, suggesting the field that
// was probably meant.
func (d *decoder) unknownKey(k *yaml.Node, path string, fields []field, present map[string]bool) {
	names := make([]string, len(fields))
	for i, f := range fields {
		names[i] = f.name
	}
	msg := "unknown key"
	if s := suggest(k.Value, names); s != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", s)
		if !present[s] {
			// The field was meant but is missing; "required" would repeat this.
			d.skip[joinPath(path, s)] = true
		}
	} else if section := sectionOf(k.Value, path); section != "" {
		msg += fmt.Sprintf("; it belongs in the %s section", section)
	} else {
		msg += "; valid keys here are " + strings.Join(names, ", ")
	}
	d.add(joinPath(path, k.Value), k.Line, "%s", msg)
}

// sectionOf names the top-level section that has a field called key, when
// key was written at the top level by mistake.
func sectionOf(key, path string) string {
	if path != "" {
		return ""
	}
	for _, top := range fieldsOf(reflect.TypeFor[federation.Config]()) {
		if top.typ.Kind() != reflect.Struct {
			continue
		}
		if _, ok := fieldIndex(fieldsOf(top.typ), key); ok {
			return top.name
		}
	}
	return ""
}

// skipped reports whether path, or a field containing it, had a decoding
// problem that makes validation problems there redundant.
func (d *decoder) skipped(path string) bool {
	for {
		if d.skip[path] {
			return true
		}
		parent, ok := parentPath(path)
		if !ok {
			return false
		}
		path = parent
	}
}

// lineOf returns the line of path, or of the nearest field containing it
// that was written in the file.
func (d *decoder) lineOf(path string) int {
	for {
		if line, ok := d.lines[path]; ok {
			return line
		}
		parent, ok := parentPath(path)
		if !ok {
			return 0
		}
		path = parent
	}
}

// parentPath strips the last ".key" or "[i]" from path.
func parentPath(path string) (string, bool) {
	if path == "" {
		return "", false
	}
	i := strings.LastIndexAny(path, ".[")
	if i < 0 {
		return "", true
	}
	return path[:i], true
}
