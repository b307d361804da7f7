package main

import (
	"strings"

	"github.com/spf13/cobra"
)

// argNames accepts exactly the named positional arguments; a wrong count is a
// usage error that names what is missing, or the first argument too many,
// instead of cobra's "accepts 2 arg(s), received 1".
func argNames(names ...string) cobra.PositionalArgs {
	return argsRange(len(names), names...)
}

// optionalArgNames accepts up to len(names) arguments, none of them required.
func optionalArgNames(names ...string) cobra.PositionalArgs {
	return argsRange(0, names...)
}

func argsRange(required int, names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, got []string) error {
		path := strings.TrimPrefix(cmd.CommandPath(), cmd.Root().Name()+" ")
		takes := path + " takes no arguments"
		if len(names) > 0 {
			takes = path + " takes " + strings.Join(names, " ")
		}
		switch {
		case len(got) < required:
			missing := names[len(got):required]
			return usageErr("missing %s (%s)", joinAnd(missing), takes)
		case len(got) > len(names):
			hint := ""
			if len(names) > 0 {
				hint = "; quote an argument that has spaces"
			}
			return usageErr("unexpected argument %.40q (%s%s)", got[len(names)], takes, hint)
		}
		return nil
	}
}

// joinAnd joins "A", "A and B", "A, B and C".
func joinAnd(s []string) string {
	if len(s) < 2 {
		return strings.Join(s, "")
	}
	return strings.Join(s[:len(s)-1], ", ") + " and " + s[len(s)-1]
}
