package main

import (
	"testing"
	"unicode/utf8"
)

func TestTermSafe(t *testing.T) {
	for _, tt := range []struct{ in, text, cell string }{
		{"plain words, ünïcode, \ufffd", "plain words, ünïcode, \ufffd", "plain words, ünïcode, \ufffd"},
		{"two\nlines\tand a tab", "two\nlines\tand a tab", `two\x0alines\x09and a tab`},
		{"windows\r\nline", "windows\nline", `windows\x0d\x0aline`},
		{"over\rwrite", `over\x0dwrite`, `over\x0dwrite`},
		{"\x1b]0;owned\x07\x1b[2J", `\x1b]0;owned\x07\x1b[2J`, `\x1b]0;owned\x07\x1b[2J`},
		{"c1 \u009b2J del \x7f", `c1 \u009b2J del \x7f`, `c1 \u009b2J del \x7f`},
		{"bad \x9b byte", `bad \x9b byte`, `bad \x9b byte`},
		{"evil\u202egnp.exe", `evil\u202egnp.exe`, `evil\u202egnp.exe`},
	} {
		if got := termSafe(tt.in); got != tt.text {
			t.Errorf("termSafe(%q) = %q, want %q", tt.in, got, tt.text)
		}
		if got := cell(tt.in); got != tt.cell {
			t.Errorf("cell(%q) = %q, want %q", tt.in, got, tt.cell)
		}
	}
}

// FuzzTermSafe: whatever the input, the output is UTF-8 with no control
// character but newline and tab (none at all in a cell), and no C1 control
// or bidirectional override.
func FuzzTermSafe(f *testing.F) {
	for _, s := range []string{"", "plain", "\x1b[2J", "a\r\nb", "\xc2\x9b", "\xff\xfe", "\u202e", "\ufffd"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, inCell := range []bool{false, true} {
			out := neutralise(s, inCell)
			if !utf8.ValidString(out) {
				t.Fatalf("neutralise(%q, %t) = %q is not UTF-8", s, inCell, out)
			}
			for _, r := range out {
				if unsafeRune(r, inCell) && r != utf8.RuneError {
					t.Fatalf("neutralise(%q, %t) = %q keeps %U", s, inCell, out, r)
				}
			}
		}
	})
}
