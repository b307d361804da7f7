package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/agentfed/agentfed/federation"
	"github.com/agentfed/agentfed/gateway"
	"github.com/agentfed/agentfed/internal/config"
	"github.com/agentfed/agentfed/internal/errtext"
	"github.com/spf13/cobra"
)

// clientFlags are shared by every command that talks to a gateway.
type clientFlags struct {
	gateway string
	token   string
	config  string // where to find the gateway's storage.dir, for its operator token
	caFile  string
	json    bool
	wait    time.Duration
}

func (f *clientFlags) register(cmd *cobra.Command, withJSON bool) {
	def := os.Getenv("AGENTFED_GATEWAY")
	if def == "" {
		def = "ws://127.0.0.1:18789"
	}
	cmd.Flags().StringVar(&f.gateway, "gateway", def, "gateway URL (default from $AGENTFED_GATEWAY)")
	cmd.Flags().StringVar(&f.token, "token", os.Getenv("AGENTFED_TOKEN"), "operator token (default $AGENTFED_TOKEN)")
	cmd.Flags().StringVarP(&f.config, "config", "c", os.Getenv("AGENTFED_CONFIG"), "the gateway's config file: without a token, use the operator token serve keeps in its storage.dir (default $AGENTFED_CONFIG, else ./agentfed.yaml if it exists; none: ./agentfed-data)")
	cmd.Flags().StringVar(&f.caFile, "ca-file", os.Getenv("AGENTFED_CA_FILE"), "PEM CAs to verify a wss:// gateway with, instead of the system roots (default $AGENTFED_CA_FILE)")
	cmd.Flags().DurationVar(&f.wait, "wait", 0, "keep trying to connect for up to this long while the gateway starts (e.g. 10s)")
	mode := "always"
	if withJSON {
		cmd.Flags().BoolVar(&f.json, "json", false, "print the exact tool result as JSON; errors as {\"error\": {\"code\", \"message\"}}")
		mode = "flag"
	}
	if cmd.Annotations == nil {
		cmd.Annotations = map[string]string{}
	}
	cmd.Annotations[jsonAnnotation] = mode
}

// call connects as an operator, runs one action object through
// federation.tool and returns the raw JSON result.
func (f *clientFlags) call(ctx context.Context, action map[string]any) (json.RawMessage, error) {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt)
	defer stop()
	c, err := f.dial(ctx)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	var out json.RawMessage
	if err := c.Call(ctx, federation.MethodTool, action, &out); err != nil {
		return nil, &exitError{code: exitFailed, err: err}
	}
	return out, nil
}

// httpClient trusts --ca-file for wss://, or returns nil (the default
// client, system roots) without one.
func (f *clientFlags) httpClient() (*http.Client, error) {
	if f.caFile == "" {
		return nil, nil
	}
	pem, err := os.ReadFile(f.caFile)
	if err != nil {
		return nil, usageErr("--ca-file: %v", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		return nil, usageErr("--ca-file %s holds no PEM certificate", f.caFile)
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}}}, nil
}

// operatorToken is --token, else $AGENTFED_TOKEN (the flag's default),
// else, for a gateway on this machine, the token `agentfed serve` keeps in
// the storage.dir of --config (default $AGENTFED_CONFIG, else
// ./agentfed.yaml when it exists, as serve does, else the default
// storage.dir), else none. A local gateway's token is never sent to
// another host.
func (f *clientFlags) operatorToken() (string, error) {
	if f.token != "" || !localGateway(f.gateway) {
		return f.token, nil
	}
	file := f.config
	if file == "" {
		if _, err := os.Stat(configFile); err == nil {
			file = configFile // what serve reads without --config
		}
	}
	dir := federation.DefaultStorage
	if file != "" {
		var err error
		if dir, err = config.StorageDir(file); err != nil {
			return "", usageErr("--config: %v", err)
		}
	}
	token, err := federation.ReadOperatorToken(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", nil // the gateway may need none; if it does, its refusal says what to do
	case err != nil:
		return "", &exitError{code: exitFailed, err: err}
	}
	return token, nil
}

// dial connects to the gateway as an operator.
func (f *clientFlags) dial(ctx context.Context) (*gateway.Client, error) {
	if err := f.checkURL(); err != nil {
		return nil, err
	}
	hc, err := f.httpClient()
	if err != nil {
		return nil, err
	}
	c, err := f.dialWaiting(ctx, &gateway.DialOptions{
		HTTPClient: hc,
		Client:     gateway.ClientInfo{ID: gateway.ClientIDCLI, Mode: gateway.ClientModeCLI, Version: federation.Version, Platform: "agentfed"},
	})
	if err != nil {
		return nil, f.dialProblem(ctx, err)
	}
	return c, nil
}

func newToolCmd(s *streams) *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "tool JSON|-",
		Short: "Run one agent_federation action object and print its JSON result",
		Long: `Send one action object, exactly as the agent_federation tool takes it, to the
gateway and print the JSON result. Use - to read the object from stdin.

Exit code 0 when the action succeeded and every delivery it made has status
"ok"; 1 when the action failed or a delivery has status "error" or "timeout".`,
		Example: `  agentfed tool '{"action":"list_peers"}'
  echo '{"action":"send","peerId":"research-agent","message":"hi"}' | agentfed tool -`,
		Args: argNames("JSON|-"),
		RunE: func(cmd *cobra.Command, args []string) error {
			input := []byte(args[0])
			if args[0] == "-" {
				var err error
				if input, err = io.ReadAll(io.LimitReader(s.in, 16<<20)); err != nil {
					return usageErr("read stdin: %v", err)
				}
			}
			var action map[string]any
			if err := json.Unmarshal(input, &action); err != nil {
				return &exitError{code: exitUsage, errCode: gateway.CodeInvalidParams, help: true,
					err: fmt.Errorf("the action must be a JSON object: %v", err)}
			}
			out, err := f.call(cmd.Context(), action)
			if err != nil {
				return err
			}
			fmt.Fprintln(s.out, indent(out))
			return failedDeliveries(out)
		},
	}
	f.register(cmd, false)
	// tool always prints JSON; --json, as every other client command takes
	// it, is accepted and changes nothing.
	cmd.Flags().Bool("json", true, "always on: tool prints JSON")
	cmd.Flags().MarkHidden("json")
	return cmd
}

func indent(raw json.RawMessage) string {
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return string(raw)
	}
	return jsonText(v, "  ")
}

// jsonText encodes v as JSON, indented by indent when it is not empty,
// without escaping <, > and & as encoding/json does for HTML: what is
// printed is the text the gateway sent ("web-search@>=2.1 <3").
func jsonText(v any, indent string) string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", indent)
	enc.Encode(v)
	return strings.TrimSuffix(b.String(), "\n")
}

// failedDeliveries turns a result whose status (or any broadcast entry's
// status) is not ok into exit code 1, naming the failures.
func failedDeliveries(raw json.RawMessage) error {
	var one federation.Result
	var many []federation.Result
	if json.Unmarshal(raw, &many) != nil {
		if json.Unmarshal(raw, &one) != nil || one.Status == "" {
			return nil
		}
		many = []federation.Result{one}
	}
	var failed []string
	for _, r := range many {
		if r.Status != federation.StatusOK && r.Error != nil {
			failed = append(failed, fmt.Sprintf("%s: %s: %s", r.PeerID, r.Error.Code, errtext.Plain(r.Error.Message)))
		}
	}
	if len(failed) == 0 {
		return nil
	}
	return &exitError{code: exitFailed, err: fmt.Errorf("delivery failed: %s", strings.Join(failed, "; ")), printed: true}
}

// localGateway reports whether the gateway URL names this machine: a
// loopback IP or localhost.
func localGateway(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil {
		return false
	}
	if ip := net.ParseIP(u.Hostname()); ip != nil {
		return ip.IsLoopback()
	}
	return strings.EqualFold(u.Hostname(), "localhost")
}
