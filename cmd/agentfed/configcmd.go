package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/agentfed/agentfed/internal/config"
	"github.com/spf13/cobra"
)

func newConfigCmd(s *streams) *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Work with configuration files"}
	cmd.AddCommand(&cobra.Command{
		Use:   "check FILE",
		Short: "Validate a configuration file without starting a gateway",
		Long:  "Validate FILE: every problem is printed with its path and line, and the exit code is 2 if there is any.",
		Args:  argNames("FILE"),
		RunE: func(_ *cobra.Command, args []string) error {
			cfg, err := config.Load(args[0])
			if err != nil {
				fmt.Fprintln(s.err, err)
				return &exitError{code: exitUsage, err: err, printed: true}
			}
			serverID := cfg.Federation.ServerID
			if serverID == "" {
				serverID = "(generated on first start)"
			}
			fmt.Fprintf(s.out, "%s: ok: serverId %s, listen %s, %s, %s, federation enabled: %t\n",
				args[0], serverID, cfg.Gateway.Listen, plural(len(cfg.Federation.Peers), "peer"), plural(len(cfg.Agents), "agent"), cfg.Federation.Enabled)
			return nil
		},
	})
	return cmd
}

func newInitCmd(s *streams) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "init [FILE]",
		Short: "Write a commented example configuration (default agentfed.yaml, which serve then reads; - for stdout)",
		Args:  optionalArgNames("FILE"),
		RunE: func(_ *cobra.Command, args []string) error {
			file := configFile
			if len(args) == 1 {
				file = args[0]
			}
			if file == "-" {
				_, err := fmt.Fprint(s.out, config.Example)
				return err
			}
			flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
			if force {
				flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
			}
			f, err := os.OpenFile(file, flags, 0o600)
			if errors.Is(err, fs.ErrExist) {
				return usageErr("%s already exists; pass --force to overwrite it", file)
			}
			if err != nil {
				return &exitError{code: exitFailed, err: err}
			}
			if _, err := f.WriteString(config.Example); err != nil {
				f.Close()
				return &exitError{code: exitFailed, err: err}
			}
			if err := f.Close(); err != nil {
				return &exitError{code: exitFailed, err: err}
			}
			fmt.Fprintf(s.out, "wrote %s; check it with: agentfed config check %s\n", file, file)
			if filepath.Clean(file) == configFile {
				fmt.Fprintf(s.out, "start a gateway with it: agentfed serve (it reads ./%s when no --config is given)\n", configFile)
			} else {
				fmt.Fprintf(s.out, "start a gateway with it: agentfed serve --config %s\n", file)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "overwrite FILE if it exists")
	return cmd
}
