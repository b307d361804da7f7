package store

import (
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

func TestFormatVersion(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CheckFormat(); err != nil {
		t.Fatalf("a new store: %v", err)
	}
	if v, err := s.Format(); err != nil || v != FormatVersion {
		t.Fatalf("recorded format %d, %v; want %d", v, err, FormatVersion)
	}
	for _, tt := range []struct {
		name, stored, want string
	}{
		{"newer", "99", "storage format version 99 is newer than this agentfed understands (1)"},
		{"damaged", "x\x00y", "is not a number"},
		{"current", "1", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket([]byte(Meta)).Put([]byte(formatKey), []byte(tt.stored)) })
			err := s.CheckFormat()
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Fatalf("CheckFormat: %v; want %q", err, tt.want)
			}
		})
	}
	s.Close()
}
