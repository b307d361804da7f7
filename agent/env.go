package agent

import (
	"os"
	"slices"
	"strings"
)

// BaseEnv names the variables an exec agent gets from the gateway's
// environment, besides those its Env sets: what programs need to find
// their tools, home, locale, time zone and temporary directory (on
// Windows, what the system needs to run a program at all). LC_* variables
// pass too. Nothing else does: the gateway's tokens and whatever else its
// environment holds stay out of reach of the programs it runs for peers.
var BaseEnv = []string{
	"PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "TZ", "TMPDIR",
	"SYSTEMROOT", "SYSTEMDRIVE", "WINDIR", "COMSPEC", "PATHEXT", "TEMP", "TMP", "USERPROFILE",
}

// environ returns the environment of an exec agent: the BaseEnv variables
// of the gateway's environment, then env in name order (overriding them).
func environ(env map[string]string) []string {
	var out []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if _, set := env[name]; set {
			continue
		}
		if strings.HasPrefix(name, "LC_") || slices.ContainsFunc(BaseEnv, func(b string) bool { return strings.EqualFold(b, name) }) {
			out = append(out, kv)
		}
	}
	names := make([]string, 0, len(env))
	for name := range env {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		out = append(out, name+"="+env[name])
	}
	return out
}
