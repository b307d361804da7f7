package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"

	"github.com/agentfed/agentfed/gateway"
)

// A Server is an http.Handler; a Client dials it, performs the connect
// handshake and calls methods.
func Example() {
	srv := &gateway.Server{
		Handler: gateway.HandlerFunc(func(ctx context.Context, id *gateway.Identity, method string, params json.RawMessage) (any, error) {
			if method != "greet" {
				return nil, gateway.NewError(gateway.CodeUnknownMethod, "unknown method "+method)
			}
			var p struct {
				Name string `json:"name"`
			}
			if err := json.Unmarshal(params, &p); err != nil {
				return nil, gateway.NewError(gateway.CodeInvalidParams, "greet params: "+err.Error())
			}
			return map[string]string{"greeting": "hello, " + p.Name + " (" + id.Role + ")"}, nil
		}),
		Methods: func(role string) []string { return []string{"greet"} },
	}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	defer srv.Shutdown(context.Background())

	ctx := context.Background()
	c, err := gateway.Dial(ctx, "ws"+strings.TrimPrefix(ts.URL, "http"), nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	fmt.Println("protocol", c.Hello().Protocol, "methods", c.Hello().Features.Methods)

	var out struct {
		Greeting string `json:"greeting"`
	}
	if err := c.Call(ctx, "greet", map[string]string{"name": "Ada"}, &out); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(out.Greeting)

	err = c.Call(ctx, "shout", nil, nil)
	fmt.Println(gateway.CodeOf(err), err)
	// Output:
	// protocol 4 methods [greet request.cancel]
	// hello, Ada (operator)
	// UNKNOWN_METHOD unknown method shout
}
