package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/agentfed/agentfed/agent"
	"go.yaml.in/yaml/v3"

	"github.com/agentfed/agentfed/federation"
)

// parse is Parse with the environment lookup made replaceable for tests.
func parse(data []byte, name string, lookup func(string) (string, bool)) (*federation.Config, error) {
	root, syntax := readYAML(data)
	if syntax != nil {
		return nil, &federation.ValidationError{File: name, Problems: syntax}
	}
	cfg := new(federation.Config)
	d := newDecoder()
	if root != nil {
		d.root(root, reflect.ValueOf(cfg).Elem())
	}
	d.expandSecrets(cfg, lookup)
	cfg.ApplyDefaults()
	problems := append(d.problems, d.validationProblems(cfg)...)
	if len(problems) == 0 {
		return cfg, nil
	}
	// Sort by line, problems without a line last, keeping the order of
	// problems on the same line.
	slices.SortStableFunc(problems, func(a, b federation.Problem) int {
		return lineKey(a.Line) - lineKey(b.Line)
	})
	if more := len(problems) - maxProblems + d.dropped; more > 0 {
		problems = append(problems[:min(len(problems), maxProblems)], federation.Problem{
			Message: fmt.Sprintf("%d more problems not shown; fix these first", more),
		})
	}
	return nil, &federation.ValidationError{File: name, Problems: problems}
}

func lineKey(line int) int {
	if line <= 0 {
		return int(^uint(0) >> 1)
	}
	return line
}

// validationProblems runs cfg.Validate and the agent package's checks of
// the handlers it implements, attaches the line of each problem's field,
// and leaves out problems that would only repeat a decoding problem.
func (d *decoder) validationProblems(cfg *federation.Config) []federation.Problem {
	var problems []federation.Problem
	var verr *federation.ValidationError
	switch err := cfg.Validate(); {
	case errors.As(err, &verr):
		problems = verr.Problems
	case err != nil:
		return []federation.Problem{{Message: err.Error()}}
	}
	problems = append(problems, agent.Check(cfg)...)
	var out []federation.Problem
	for _, p := range problems {
		if d.skipped(p.Path) {
			continue
		}
		p.Line = d.lineOf(p.Path)
		out = append(out, p)
	}
	return out
}

// readYAML parses data as a single YAML document. It returns a nil node for
// an empty document, and problems for a syntax error or a second document.
func readYAML(data []byte) (*yaml.Node, []federation.Problem) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, []federation.Problem{syntaxProblem(err)}
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return nil, []federation.Problem{syntaxProblem(err)}
	default:
		return nil, []federation.Problem{{
			Line:    next.Line,
			Message: "a second YAML document starts here; put the whole configuration in one document",
		}}
	}
	if len(doc.Content) == 0 {
		return nil, nil
	}
	return doc.Content[0], nil
}

var yamlLineRE = regexp.MustCompile(`(?s)^yaml: line (\d+): (.*)$`)

// syntaxProblem turns a YAML syntax error into a Problem with its line.
func syntaxProblem(err error) federation.Problem {
	msg := err.Error()
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		if isParserError(m[2]) {
			// yaml.v3 numbers lines from 0 in parser (not scanner) errors.
			line++
		}
		return federation.Problem{Line: line, Message: "invalid YAML: " + m[2]}
	}
	return federation.Problem{Message: "invalid YAML: " + strings.TrimPrefix(msg, "yaml: ")}
}

// isParserError reports whether msg comes from the YAML parser rather than
// its scanner; these are the parser's messages in yaml.v3's parserc.go.
func isParserError(msg string) bool {
	switch msg {
	case "found undefined tag handle", "found duplicate %YAML directive",
		"found incompatible YAML document", "found duplicate %TAG directive":
		return true
	}
	return strings.HasPrefix(msg, "did not find expected ")
}
