package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/agentfed/agentfed/internal/store"
	"github.com/spf13/cobra"
)

// storeFlags name the store a store command works on: the storage.dir of
// a config file (the default config without one), or a directory.
type storeFlags struct {
	config, dir string
}

func (f *storeFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.config, "config", "", "the gateway's config file: its storage.dir")
	cmd.Flags().StringVar(&f.dir, "dir", "", "the storage directory (storage.dir)")
	cmd.MarkFlagsMutuallyExclusive("config", "dir")
}

// path returns the store file's path.
func (f *storeFlags) path() (string, error) {
	dir := f.dir
	if dir == "" {
		cfg, err := loadConfig(f.config)
		if err != nil {
			return "", err
		}
		dir = cfg.Storage.Dir
	}
	return filepath.Join(dir, store.FileName), nil
}

func newStoreCmd(s *streams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "store",
		Short: "Check a stopped gateway's store, salvage a damaged one, or forget a mesh key",
		Long: `The store is storage.dir/agentfed.db: the outbox, handled durable messages,
dynamic peers, synced context and the keys of gateways first seen across the
mesh. A gateway refuses to start on a damaged store; these commands work on the
file while no gateway has it open.`,
	}
	cmd.AddCommand(newStoreCheckCmd(s), newStoreSalvageCmd(s), newStoreForgetKeyCmd(s))
	return cmd
}

func newStoreCheckCmd(s *streams) *cobra.Command {
	var f storeFlags
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Read every record of the store and run bbolt's consistency check",
		Long:  "Exit code 0: the store is sound; 1: it is damaged (the problems are listed) or cannot be read.",
		Args:  argNames(),
		RunE: func(*cobra.Command, []string) error {
			path, err := f.path()
			if err != nil {
				return err
			}
			rep, err := store.Check(path)
			if err != nil {
				return &exitError{code: exitFailed, err: err}
			}
			if len(rep.Problems) == 0 {
				fmt.Fprintf(s.out, "%s: ok: %s\n", path, counts(rep.Records))
				return nil
			}
			fmt.Fprintf(s.out, "%s: damaged\n", path)
			listProblems(s.out, rep.Problems)
			fmt.Fprintf(s.out, "readable: %s\n", counts(rep.Records))
			err = fmt.Errorf("%s is damaged: keep a copy, then run \"agentfed store salvage --dir %s NEW.db\" and replace it with NEW.db, or restore it from a backup",
				path, filepath.Dir(path))
			return &exitError{code: exitFailed, err: err}
		},
	}
	f.add(cmd)
	return cmd
}

func newStoreSalvageCmd(s *streams) *cobra.Command {
	var f storeFlags
	cmd := &cobra.Command{
		Use:   "salvage OUT",
		Short: "Copy every readable record of a damaged store into a new file OUT",
		Long: `Copy every record that can be read from the store into the new store file OUT
(which must not exist), and list what could not be read. The damaged file is
not changed. To use the result, stop the gateway, keep the damaged file, move
OUT to storage.dir/agentfed.db and start the gateway.`,
		Args: argNames("OUT"),
		RunE: func(_ *cobra.Command, args []string) error {
			if _, err := os.Lstat(args[0]); err == nil {
				return usageErr("%s exists; give a new file name (salvage never overwrites a file)", args[0])
			}
			path, err := f.path()
			if err != nil {
				return err
			}
			res, err := store.Salvage(path, args[0])
			if err != nil {
				return &exitError{code: exitFailed, err: err}
			}
			fmt.Fprintf(s.out, "copied from %s into %s: %s\n", path, res.Out, counts(res.Records))
			if len(res.Problems) == 0 {
				fmt.Fprintln(s.out, "nothing was lost: every record was readable")
				return nil
			}
			fmt.Fprintln(s.out, "lost (unreadable in the damaged file):")
			listProblems(s.out, res.Problems)
			fmt.Fprintf(s.out, "to use it: stop the gateway, keep %s, move %s to %s, start the gateway\n", path, res.Out, path)
			return nil
		},
	}
	f.add(cmd)
	return cmd
}

func newStoreForgetKeyCmd(s *streams) *cobra.Command {
	var f storeFlags
	cmd := &cobra.Command{
		Use:   "forget-key SERVERID",
		Short: "Forget the signing key first seen for a gateway across the mesh",
		Long: `A gateway keeps the signing key it first sees for each gateway across the mesh
(trust on first use) and refuses a different one later with BAD_SIGNATURE. When
that gateway really changed its key, forget the old one here (gateway stopped):
the next key seen is kept. Pinning the new key (publicKey in gateway.auth.peers
or federation.peers) is the stronger fix: a pinned key always wins.`,
		Args: argNames("SERVERID"),
		RunE: func(_ *cobra.Command, args []string) error {
			path, err := f.path()
			if err != nil {
				return err
			}
			st, err := store.Open(filepath.Dir(path))
			if err != nil {
				return &exitError{code: exitFailed, err: err}
			}
			defer st.Close()
			id := args[0]
			old, err := st.Get(store.MeshKeys, id)
			if err != nil {
				return &exitError{code: exitFailed, err: err}
			}
			if old == nil {
				return &exitError{code: exitFailed, err: fmt.Errorf("%s keeps no key first seen for gateway %q", path, clipArg(id))}
			}
			if err := st.Delete(store.MeshKeys, id); err != nil {
				return &exitError{code: exitFailed, err: err}
			}
			fmt.Fprintf(s.out, "forgot the key first seen for gateway %q; the next one seen is kept\n", id)
			return nil
		},
	}
	f.add(cmd)
	return cmd
}

// clipArg bounds an argument echoed in an error.
func clipArg(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

func counts(records map[string]int) string {
	names := make([]string, 0, len(records))
	for name := range records {
		names = append(names, name)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, name := range names {
		parts[i] = fmt.Sprintf("%s %d", name, records[name])
	}
	if len(parts) == 0 {
		return "no records"
	}
	return strings.Join(parts, ", ") + " records"
}

func listProblems(w io.Writer, problems []string) {
	for _, p := range problems {
		fmt.Fprintf(w, "  - %s\n", p)
	}
}
