package config_test

import (
	"path/filepath"
	"testing"

	"github.com/agentfed/agentfed/internal/config"
)

// The NATS examples load and validate as they are.
func TestNATSExamplesLoad(t *testing.T) {
	files, err := filepath.Glob("../../examples/nats/*.yaml")
	if err != nil || len(files) != 3 {
		t.Fatalf("examples/nats: %v, %v; want three files", files, err)
	}
	for _, f := range files {
		cfg, err := config.Load(f)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		if cfg.Federation.Transport != "nats" || cfg.NATS.Embedded == nil || len(cfg.NATS.Embedded.Cluster.Routes) != 2 {
			t.Errorf("%s: transport %q, embedded %+v; want nats with a two-route cluster", f, cfg.Federation.Transport, cfg.NATS.Embedded)
		}
	}
}
