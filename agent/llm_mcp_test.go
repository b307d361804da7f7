package agent

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// stdioMCPEnv makes the test binary a stdio MCP server (see TestMain).
const stdioMCPEnv = "AGENTFED_TEST_MCP_STDIO"

type addInput struct {
	A float64 `json:"a" jsonschema:"the first number"`
	B float64 `json:"b" jsonschema:"the second number"`
}

type addOutput struct {
	Sum float64 `json:"sum"`
}

// calculator is an MCP server with one tool, add, and one that fails.
func calculator() *mcp.Server {
	s := mcp.NewServer(&mcp.Implementation{Name: "calculator", Version: "1"}, nil)
	mcp.AddTool(s, &mcp.Tool{Name: "add", Description: "Adds two numbers"},
		func(_ context.Context, _ *mcp.CallToolRequest, in addInput) (*mcp.CallToolResult, addOutput, error) {
			return nil, addOutput{Sum: in.A + in.B}, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "divide by zero", Description: "Always fails"},
		func(context.Context, *mcp.CallToolRequest, addInput) (*mcp.CallToolResult, addOutput, error) {
			return nil, addOutput{}, errorString("cannot divide by zero")
		})
	return s
}

type errorString string

func (e errorString) Error() string { return string(e) }

func serveCalculator(ctx context.Context, t mcp.Transport) { calculator().Run(ctx, t) }

// The model calls MCP tools as SERVER__TOOL, over HTTP and over stdio, and
// sees their results and errors.
func TestLLMCallsMCPTools(t *testing.T) {
	calc := calculator()
	var (
		mu   sync.Mutex // guards auth
		auth []string
	)
	handler := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return calc }, nil)
	httpSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		auth = append(auth, r.Header.Get("Authorization"))
		mu.Unlock()
		handler.ServeHTTP(w, r)
	}))
	defer httpSrv.Close()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name   string
		server MCPServer
	}{
		{"http", MCPServer{Name: "calc", URL: httpSrv.URL, Headers: map[string]string{"Authorization": "Bearer k"}}},
		{"stdio", MCPServer{Name: "calc", Command: []string{self}, Env: map[string]string{stdioMCPEnv: "1"}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			llm := newScriptedLLM(t)
			llm.script("m", func(req chatRequest, _ int) (int, map[string]string, any) {
				if res := toolResults(req); len(res) > 0 {
					return completion(strings.Join(res, " | "))
				}
				return namedCalls("", "calc__add", `{"a":2,"b":3}`, "calc__divide_by_zero", `{"a":1,"b":0}`)
			})
			l := &LLM{BaseURL: llm.URL + "/v1", Model: "m", MCPServers: []MCPServer{tt.server}}
			ans, err := l.Handle(context.Background(), testMessage("add 2 and 3"))
			if err != nil {
				t.Fatal(err)
			}
			if want := `{"sum":5} | {"error":{"code":"TOOL_ERROR","message":"cannot divide by zero"}}`; ans.Content != want {
				t.Errorf("answer = %q, want the tools' results %q", ans.Content, want)
			}
			first := llm.requests("m")[0]
			var names []string
			for _, tool := range first.Tools {
				names = append(names, tool.Function.Name)
			}
			if strings.Join(names, ",") != "calc__add,calc__divide_by_zero" {
				t.Errorf("tools offered: %v", names)
			}
			var schema struct {
				Properties map[string]any `json:"properties"`
			}
			json.Unmarshal(first.Tools[0].Function.Parameters, &schema)
			if len(schema.Properties) != 2 {
				t.Errorf("calc__add parameters = %s, want the tool's input schema", first.Tools[0].Function.Parameters)
			}
		})
	}
	mu.Lock()
	defer mu.Unlock()
	if len(auth) == 0 || auth[0] != "Bearer k" {
		t.Errorf("HTTP MCP requests carried Authorization %q, want the configured header", auth)
	}
}
