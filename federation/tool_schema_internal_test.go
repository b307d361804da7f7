package federation

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestToolSchemaMatchesInputs keeps the published schema (agentfed schema)
// and the types the tool decodes into in agreement: the same parameters,
// of the same JSON types, and the same actions.
func TestToolSchemaMatchesInputs(t *testing.T) {
	var schema struct {
		Properties map[string]struct {
			Type string   `json:"type"`
			Enum []string `json:"enum"`
		} `json:"properties"`
	}
	if err := json.Unmarshal(toolSchema, &schema); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(Actions, schema.Properties["action"].Enum); diff != "" {
		t.Errorf("actions (-Actions +schema):\n%s", diff)
	}

	inputs := map[string]any{
		"send": sendInput{}, "delegate": delegateInput{}, "broadcast": broadcastInput{}, "list_peers": actionField{},
		"register_peer": registerInput{}, "unregister_peer": unregisterInput{}, "sync_context": syncInput{},
		"query_capabilities": queryInput{},
	}
	for _, a := range Actions {
		if inputs[a] == nil {
			t.Errorf("action %q has no input type in this test", a)
		}
	}
	decoded := map[string]string{} // parameter -> JSON type
	for action, in := range inputs {
		for name, typ := range jsonParams(reflect.TypeOf(in)) {
			if prev, ok := decoded[name]; ok && prev != typ {
				t.Errorf("parameter %q is %s in one action and %s in %s", name, prev, typ, action)
			}
			decoded[name] = typ
		}
	}
	published := map[string]string{}
	for name, p := range schema.Properties {
		published[name] = p.Type
	}
	if diff := cmp.Diff(decoded, published); diff != "" {
		t.Errorf("parameters and their types (-decoded +schema):\n%s", diff)
	}
}

// jsonParams lists the JSON members a struct decodes, with the JSON
// Schema type of each, through embedded structs as encoding/json does.
func jsonParams(t reflect.Type) map[string]string {
	out := map[string]string{}
	for f := range slices.Values(reflect.VisibleFields(t)) {
		if !f.IsExported() || f.Anonymous {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = schemaType(f.Type)
	}
	return out
}

func schemaType(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int32, reflect.Int64:
		return "integer"
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.Slice, reflect.Array:
		return "array"
	case reflect.Map, reflect.Struct:
		return "object"
	}
	return t.Kind().String()
}
