package config

import (
	"fmt"
	"os"

	"go.yaml.in/yaml/v3"

	"github.com/agentfed/agentfed/federation"
)

// StorageDir returns the storage.dir the configuration file at path sets,
// or the default. Unlike Load it reads nothing else, so it needs none of
// the file's ${VAR}s: client commands use it to find the operator token a
// gateway keeps there.
func StorageDir(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read config: %w", err)
	}
	var doc struct {
		Storage struct {
			Dir string `yaml:"dir"`
		} `yaml:"storage"`
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	if doc.Storage.Dir == "" {
		return federation.DefaultStorage, nil
	}
	return doc.Storage.Dir, nil
}
