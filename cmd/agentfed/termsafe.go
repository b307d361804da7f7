package main

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// termSafe returns s with everything a terminal would act on made visible
// instead: escape sequences and other control characters (not newline and
// tab) become \x1b and the like, C1 controls and bidirectional overrides
// \u009b and the like, and bytes that are not UTF-8 \xff. Human-readable
// output passes remote text (answers, descriptions, error messages)
// through it, so that a peer cannot clear the screen, set the window title
// or make text read otherwise than it is. A CR before a LF is dropped.
// --json output is exact instead: JSON escapes control characters itself.
func termSafe(s string) string { return neutralise(s, false) }

// cell is termSafe for one cell of a table: newlines and tabs are made
// visible too, so that a value cannot add rows or columns.
func cell(s string) string { return neutralise(s, true) }

func neutralise(s string, inCell bool) string {
	i := strings.IndexFunc(s, func(r rune) bool { return unsafeRune(r, inCell) })
	if i < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 16)
	b.WriteString(s[:i])
	for s = s[i:]; s != ""; {
		r, size := utf8.DecodeRuneInString(s)
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[0])
		case r == utf8.RuneError: // a real U+FFFD
			b.WriteString(s[:size])
		case r == '\r' && !inCell && strings.HasPrefix(s[1:], "\n"):
		case r < 0x20 && r != '\n' && r != '\t' || r == 0x7f || (inCell && (r == '\n' || r == '\t')):
			fmt.Fprintf(&b, `\x%02x`, r)
		case unsafeRune(r, inCell):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[:size])
		}
		s = s[size:]
	}
	return b.String()
}

// unsafeRune reports whether r must not reach a terminal as it is.
func unsafeRune(r rune, inCell bool) bool {
	switch {
	case r == '\n' || r == '\t':
		return inCell
	case r < 0x20, r == 0x7f, 0x80 <= r && r <= 0x9f: // C0, DEL, C1 (0x9b is CSI)
		return true
	case 0x202a <= r && r <= 0x202e, 0x2066 <= r && r <= 0x2069: // bidirectional embeddings, overrides, isolates
		return true
	}
	return r == utf8.RuneError // also what invalid bytes decode to
}
