package main

import (
	"fmt"
	"path/filepath"

	"github.com/agentfed/agentfed/federation"
	"github.com/spf13/cobra"
)

func newIdentityCmd(s *streams) *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "identity",
		Short: "Print this gateway's public keys and fingerprint, for peers to pin",
		Long: `Print the gateway's identity: its serverId (when the config sets one), the
Ed25519 signing key its peers pin as gateway.auth.peers[].publicKey and
federation.peers[].publicKey, the X25519 key they set as
federation.peers[].encryptionKey, and the signing key's fingerprint.

The keys live in <storage.dir>/identity.key (default ./agentfed-data), which
is created when missing. It is safe to run while the gateway is running.`,
		Args: argNames(),
		RunE: func(_ *cobra.Command, _ []string) error {
			cfg, err := loadConfig(file)
			if err != nil {
				return err
			}
			id, err := federation.LoadIdentity(cfg.Storage.Dir)
			if err != nil {
				return &exitError{code: exitFailed, err: err}
			}
			pub := id.Public()
			if cfg.Federation.ServerID != "" {
				fmt.Fprintf(s.out, "serverId:      %s\n", cfg.Federation.ServerID)
			}
			fmt.Fprintf(s.out, "signingKey:    %s\n", pub.SigningKey)
			fmt.Fprintf(s.out, "encryptionKey: %s\n", pub.EncryptionKey)
			fmt.Fprintf(s.out, "fingerprint:   %s\n", pub.Fingerprint)
			fmt.Fprintf(s.out, "file:          %s\n", filepath.Join(cfg.Storage.Dir, federation.IdentityFile))
			return nil
		},
	}
	cmd.Flags().StringVarP(&file, "config", "c", "", "configuration file; none: storage in ./agentfed-data")
	return cmd
}
