// Package errtext shapes error messages for people at agentfed's front
// doors: the CLI, the MCP server and the dashboard. Its functions are pure
// and safe for concurrent use.
//
// Errors that cross the wire carry a stable code and a message. The
// federation package's sentinel errors put words in front of that message
// that only restate the code ("federation: unknown peer: no peer named
// ..."), useful in a Go program's log, redundant next to the code.
package errtext

import "regexp"

// sentinelRE matches the federation package's sentinel text ("federation:
// unknown peer"), which only restates the error code, with the separator
// after it.
var sentinelRE = regexp.MustCompile(`(^|: )federation: ([a-z][a-z ]*)(: |$)`)

// Plain drops the sentinel text from an error message: "federation:
// unknown peer: no peer named ..." reads "no peer named ...". A message
// that is only the sentinel keeps its words ("federation: timeout" reads
// "timeout").
func Plain(msg string) string {
	return sentinelRE.ReplaceAllStringFunc(msg, func(m string) string {
		sub := sentinelRE.FindStringSubmatch(m)
		if sub[3] == "" {
			return sub[1] + sub[2]
		}
		return sub[1]
	})
}
