package main

import (
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"

	"github.com/agentfed/agentfed/gateway"
	"github.com/agentfed/agentfed/internal/errtext"
	"github.com/spf13/cobra"
)

// Codes of failures that never got an answer from a gateway; a gateway's
// own errors keep their code (docs/PROTOCOL.md).
const (
	codeUsage       = "USAGE"               // bad flags or arguments; exit 2
	codeUnreachable = "GATEWAY_UNREACHABLE" // no gateway could be reached at --gateway
	codeFailed      = "FAILED"              // a local failure, such as a file that cannot be written
)

// jsonAnnotation marks a client command: "flag" when its --json flag asks
// for JSON output, "always" when it prints nothing else (tool).
const jsonAnnotation = "agentfed.json"

// report prints err for a person on stderr, and with --json also as
// {"error": {...}} on stdout, and returns the exit code.
func report(cmd *cobra.Command, args []string, err error, stdout, stderr io.Writer) int {
	var ee *exitError
	if !errors.As(err, &ee) {
		// Cobra's own errors: unknown command or flag, wrong argument count.
		ee = &exitError{code: exitUsage, err: err, help: true}
	}
	if ee.printed {
		return ee.code
	}
	code := ee.stableCode()
	msg := strings.TrimPrefix(ee.message(), code+": ") // a caller that put the code in the text
	if wantsJSON(cmd, args) {
		fmt.Fprintln(stdout, jsonText(map[string]*gateway.Error{"error": ee.wireError(code, msg)}, ""))
	}
	msg = termSafe(msg) // it may quote a remote gateway; the JSON above is exact
	var ge *gateway.Error
	if errors.As(ee.err, &ge) {
		fmt.Fprintf(stderr, "agentfed: %s: %s\n", code, msg)
	} else {
		fmt.Fprintf(stderr, "agentfed: %s\n", msg)
	}
	if ee.help {
		fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
	}
	return ee.code
}

// wantsJSON reports whether cmd is a client command whose output is JSON.
// A flag error can stop parsing before --json, so args are checked too.
func wantsJSON(cmd *cobra.Command, args []string) bool {
	switch cmd.Annotations[jsonAnnotation] {
	case "always":
		return true
	case "flag":
		if f := cmd.Flags().Lookup("json"); f != nil && f.Value.String() == "true" {
			return true
		}
		return slices.Contains(args, "--json")
	}
	return false
}

// stableCode is the code a program can branch on: the gateway's, else one
// of the CLI's own.
func (e *exitError) stableCode() string {
	if e.errCode != "" {
		return e.errCode
	}
	var ge *gateway.Error
	if errors.As(e.err, &ge) {
		return ge.Code
	}
	if e.code == exitUsage {
		return codeUsage
	}
	if c := gateway.CodeOf(e.err); c != gateway.CodeInternal { // TIMEOUT, CANCELLED
		return c
	}
	return codeFailed
}

// message is the error text once: without the sentinel words that repeat
// the code, and naming the CLI's flags rather than the tool's parameters
// when the CLI built the action.
func (e *exitError) message() string {
	msg := errtext.Plain(e.err.Error())
	for param, flag := range e.flags {
		re := regexp.MustCompile(`(^|; )` + regexp.QuoteMeta(param) + `\b`)
		msg = re.ReplaceAllString(msg, "${1}"+flag)
	}
	return msg
}

// wireError is the error as --json prints it: the gateway's fields
// (retryable, retryAfterMs, details) with the clean message.
func (e *exitError) wireError(code, msg string) *gateway.Error {
	out := &gateway.Error{Code: code, Message: msg}
	var ge *gateway.Error
	if errors.As(e.err, &ge) {
		out.Details, out.Retryable, out.RetryAfterMs = ge.Details, ge.Retryable, ge.RetryAfterMs
	}
	return out
}
