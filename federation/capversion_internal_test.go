package federation

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

// TestRequirementMetBy pins what a requirement matches: an unversioned one
// any capability of its name, a constrained one only a version within it.
func TestRequirementMetBy(t *testing.T) {
	have := func(caps ...string) []capability {
		out, ok := parseCapabilities(caps)
		if !ok {
			t.Fatalf("capabilities %q do not parse", caps)
		}
		return out
	}
	tests := []struct {
		req  string
		caps []capability
		want bool
	}{
		{"web-search", have("web-search"), true},
		{"web-search", have("web-search@2.1.0"), true},
		{"web-search", have("Web-Search@2.1.0"), false}, // names stay case-sensitive
		{"web-search", have("web-search-pro@2.1.0"), false},
		{"web-search@^2", have("web-search@2.1.0"), true},
		{"web-search@^2", have("web-search@1.9.9"), false},
		{"web-search@^2", have("web-search@3.0.0"), false},
		{"web-search@^2", have("web-search"), false}, // unversioned promises no version
		{"web-search@^2", have("web-search@1.0.0", "web-search@2.0.0"), true},
		{"web-search@>=2.1 <3", have("web-search@2.0.9"), false},
		{"web-search@>=2.1 <3", have("web-search@2.1.0"), true},
		{"web-search@>=2.1, <3", have("web-search@2.9.0"), true},
		{"web-search@~1.2 || ^3", have("web-search@3.4.0"), true},
		{"web-search@~1.2 || ^3", have("web-search@1.3.0"), false},
		{"web-search@2.1.0", have("web-search@2.1.0+build.7"), true},
		{"web-search@^2", have("web-search@2.2.0-beta.1"), false}, // pre-releases only when asked for
		{"web-search@^2.2.0-0", have("web-search@2.2.0-beta.1"), true},
		{"a@b@^1", have("a@b@1.0.0"), true}, // names may hold an @; the last one starts the version
	}
	for _, tt := range tests {
		r, err := parseRequirement(tt.req)
		if err != nil {
			t.Fatalf("parseRequirement(%q): %v", tt.req, err)
		}
		if got := r.metBy(tt.caps); got != tt.want {
			t.Errorf("%q met by %v = %v, want %v", tt.req, tt.caps, got, tt.want)
		}
	}
}

func TestParseRequirementsNamesTheEntry(t *testing.T) {
	tests := []struct {
		reqs []string
		want string
	}{
		{nil, "requiredCapabilities must name at least one capability"},
		{[]string{"web-search", "summarization@>>2"}, `requiredCapabilities[1]: "summarization@>>2": ">>2" is not a version constraint`},
		{[]string{"web-search", " "}, "requiredCapabilities[1]: empty capability"},
		{[]string{"web-search@"}, `requiredCapabilities[0]: "web-search@" has no version constraint after the @`},
		{[]string{strings.Repeat("x", 300)}, "requiredCapabilities[0]: \"" + strings.Repeat("x", 40) + "…\" is 300 bytes, over the 128-byte limit"},
		{make([]string, 65), "requiredCapabilities has 65 entries, over the limit of 64"},
	}
	for _, tt := range tests {
		_, err := parseRequirements(nil, tt.reqs)
		if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), ErrInvalidParams.Message) {
			t.Errorf("parseRequirements(%.60q) = %v, want INVALID_PARAMS containing %q", tt.reqs, err, tt.want)
		}
	}
}

func TestVersionsOfIsBoundedAndSorted(t *testing.T) {
	var lists [][]capability
	for _, s := range []string{"web-search@2.10.0", "web-search@2.9.0", "web-search", "other@1.0.0", "web-search@2.9.0"} {
		c, err := parseCapability(s)
		if err != nil {
			t.Fatal(err)
		}
		lists = append(lists, []capability{c})
	}
	for i := range 20 {
		c, _ := parseCapability("web-search@1.0." + strings.Repeat("1", i+1))
		lists = append(lists, []capability{c})
	}
	vs, unversioned, more := versionsOf("web-search", lists)
	if !unversioned || len(vs) != maxVersionsShown || more != 22-maxVersionsShown {
		t.Fatalf("versionsOf = %v, unversioned %v, %d more; want %d versions, unversioned, %d more", vs, unversioned, more, maxVersionsShown, 22-maxVersionsShown)
	}
	if d := cmp.Diff([]string{"1.0.1", "1.0.11", "1.0.111"}, vs[:3]); d != "" {
		t.Fatalf("versions not in semver order (-want +got):\n%s", d)
	}
}

// FuzzParseRequirement: any string parses or fails without panicking, and
// the error stays short and valid UTF-8 whatever the input's size.
func FuzzParseRequirement(f *testing.F) {
	for _, s := range []string{"web-search", "web-search@^2", "a@>=2.1 <3", "@", "x@", "x@1.2.3-beta+b", "x@~1 || ^3", strings.Repeat("@", 300)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, err := range []error{errOf(parseRequirement(s)), errOf(parseCapability(s))} {
			if err == nil {
				continue
			}
			if len(err.Error()) > 3*maxCapabilityBytes+600 {
				t.Fatalf("error for %d bytes is %d bytes long", len(s), len(err.Error()))
			}
			if utf8.ValidString(s) && !utf8.ValidString(err.Error()) {
				t.Fatalf("error for valid UTF-8 is not: %q", err)
			}
		}
	})
}

func errOf[T any](_ T, err error) error { return err }
