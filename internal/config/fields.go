package config

import (
	"reflect"
	"strings"
	"unicode"
)

// field is a struct field as the configuration file names it.
type field struct {
	name  string // the key in the file, from the yaml tag
	index int
	typ   reflect.Type
}

// fieldsOf lists the fields of struct type t in declaration order.
func fieldsOf(t reflect.Type) []field {
	var fields []field
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		switch name {
		case "-":
			continue
		case "":
			name = strings.ToLower(f.Name)
		}
		fields = append(fields, field{name: name, index: i, typ: f.Type})
	}
	return fields
}

func fieldIndex(fields []field, name string) (int, bool) {
	for _, f := range fields {
		if f.name == name {
			return f.index, true
		}
	}
	return 0, false
}

// suggest returns the name in names that key was most likely meant to be,
// or "" when none is close. Names that differ only in case, '_' or '-' win;
// otherwise the nearest within a third of its length in edit distance.
func suggest(key string, names []string) string {
	norm := normalizeKey(key)
	for _, n := range names {
		if normalizeKey(n) == norm {
			return n
		}
	}
	best, bestDist := "", 0
	for _, n := range names {
		limit := max(1, len(n)/3)
		d := editDistance(strings.ToLower(key), strings.ToLower(n))
		if d <= limit && (best == "" || d < bestDist) {
			best, bestDist = n, d
		}
	}
	return best
}

func normalizeKey(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '_' || r == '-' || unicode.IsSpace(r) {
			return -1
		}
		return unicode.ToLower(r)
	}, s)
}

// editDistance is the Levenshtein distance between a and b, in runes.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	if len(ra) > 64 || len(rb) > 64 {
		// Keys that long are not typos of ours; skip the quadratic work.
		return max(len(ra), len(rb))
	}
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}
