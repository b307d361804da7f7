package main

import "testing"

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
