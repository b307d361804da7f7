package agent

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"

	"github.com/agentfed/agentfed/gateway"
	"github.com/agentfed/agentfed/internal/store"
)

// OpenClawDeviceFile is the file inside storage.dir that holds the
// gateway's OpenClaw device key: one PKCS #8 "PRIVATE KEY" PEM block, an
// Ed25519 key, mode 0600. Every openclaw agent of the gateway connects
// with it, so an OpenClaw gateway pairs agentfed once.
const OpenClawDeviceFile = "openclaw-device.key"

// LoadOpenClawDevice reads the OpenClaw device identity kept in dir,
// generating and saving one first if there is none. Generation is atomic:
// the key is written to a temporary file and linked into place, so two
// processes racing to create it end up with the same key.
func LoadOpenClawDevice(dir string) (*gateway.Device, error) {
	path := filepath.Join(dir, OpenClawDeviceFile)
	d, err := readDevice(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return d, err
	}
	if err := store.PrepareDir(dir); err != nil {
		return nil, err
	}
	return createDevice(path)
}

func createDevice(path string) (*gateway.Device, error) {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate the OpenClaw device key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encode the OpenClaw device key: %w", err)
	}
	created, err := store.CreateFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	switch {
	case err != nil:
		return nil, fmt.Errorf("the OpenClaw device key: %w", err)
	case !created: // another process created it meanwhile: its key wins
		return readDevice(path)
	}
	return gateway.NewDevice(key), nil
}

func readDevice(path string) (*gateway.Device, error) {
	data, err := store.ReadSecret(path, "OpenClaw device key", 16<<10) // one PEM key is well under 1 KiB
	if err != nil {
		return nil, err
	}
	key, err := parseDeviceKey(data)
	if err != nil {
		return nil, fmt.Errorf("OpenClaw device key %s: %w; delete it to generate a new device identity, then approve the new device on each OpenClaw gateway (openclaw devices approve)", path, err)
	}
	return gateway.NewDevice(key), nil
}

func parseDeviceKey(data []byte) (ed25519.PrivateKey, error) {
	b, _ := pem.Decode(data)
	if b == nil || b.Type != "PRIVATE KEY" {
		return nil, errors.New(`want one PEM block "PRIVATE KEY"`)
	}
	k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		return nil, err
	}
	key, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("want an Ed25519 key, got %T", k)
	}
	return key, nil
}
