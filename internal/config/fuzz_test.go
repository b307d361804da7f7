package config

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse checks that no input makes Parse panic, that it returns either a
// configuration or an error, and that a configuration it returns is valid.
func FuzzParse(f *testing.F) {
	f.Add([]byte(Example))
	f.Add([]byte(""))
	f.Add([]byte("federation:\n  peers:\n    - &p {id: a, name: A, url: 'ws://h:1', agentId: x}\n    - <<: *p\n      id: b\n"))
	f.Add([]byte("a: &a [*a]\n"))
	f.Add([]byte("federation: {peers: [{token: '${X}$${Y}${'}]}\n"))
	f.Add([]byte("agents: [{id: a, handler: {type: exec, command: [a], env: &e {A: '${X}', B: 1, <<: {C: c}}}}, {id: b, handler: {type: exec, command: [b], env: *e}}]\n"))
	files, err := filepath.Glob("testdata/*.*")
	if err != nil {
		f.Fatal(err)
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	lookup := env(map[string]string{"X": "x", "EMPTY": ""})
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := parse(data, "fuzz.yaml", lookup)
		if (cfg == nil) == (err == nil) {
			t.Fatalf("parse() = %v, %v; want exactly one of them", cfg, err)
		}
		if err != nil {
			if err.Error() == "" {
				t.Fatal("parse() returned an error with no text")
			}
			return
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("parse() returned a configuration that does not validate: %v", err)
		}
	})
}
