package openclaw_test

import (
	"bytes"
	"os"
	"testing"

	agentfed "github.com/agentfed/agentfed/federation"
)

// TestPluginSchemaIsAgentfeds: the plugin registers the tool with exactly
// the schema `agentfed schema` prints. After changing
// federation/tool_schema.json, copy it here.
func TestPluginSchemaIsAgentfeds(t *testing.T) {
	got, err := os.ReadFile("tool_schema.json")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, agentfed.ToolSchema()) {
		t.Fatal("integrations/openclaw/tool_schema.json differs from federation/tool_schema.json; run: cp federation/tool_schema.json integrations/openclaw/")
	}
}
