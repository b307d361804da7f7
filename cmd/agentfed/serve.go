package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/agentfed/agentfed/agent"
	"github.com/agentfed/agentfed/federation"
	"github.com/agentfed/agentfed/gateway"
	"github.com/agentfed/agentfed/internal/config"
	"github.com/spf13/cobra"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

func newServeCmd(s *streams) *cobra.Command {
	var (
		file, listen, logLevel, logFormat string
		grace                             time.Duration
	)
	cmd := &cobra.Command{
		Use:     "serve",
		Aliases: []string{"gateway"},
		Short:   "Run a gateway (./agentfed.yaml if there is one, else 127.0.0.1:18789 and one echo agent)",
		Long: `Run a gateway until SIGINT or SIGTERM. 'agentfed gateway' is the same command.

Without --config it reads ./agentfed.yaml when that file exists (as written
by 'agentfed init'), and says so in its log. Otherwise, or with --config '',
it listens on 127.0.0.1:18789 with federation enabled and one built-in echo
agent, keeping state in ./agentfed-data. On a signal it stops accepting work,
lets requests in flight finish for up to --grace, and closes every connection
with a close frame. SIGHUP reloads the config file's credentials and peers.

When gateway.auth.operatorToken is not set, serve generates an operator token
once into <storage.dir>/operator.token (mode 0600) and requires it. Client
commands read it by themselves when run with the same --config (or in the
directory of ./agentfed.yaml, or of ./agentfed-data).`,
		Args: argNames(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := newLogger(s.err, logLevel, logFormat)
			if err != nil {
				return err
			}
			// The OTEL_* environment is checked before anything is written.
			tp, err := tracerProvider(cmd.Context(), log)
			if err != nil {
				return err
			}
			if err := checkListenFlag(listen); err != nil {
				return err
			}
			if !cmd.Flags().Changed("config") {
				file = defaultConfigFile(log)
			}
			cfg, err := loadConfig(file)
			if err != nil {
				return err
			}
			o := overrides{listen: listen, log: log}
			if err := o.apply(cfg); err != nil {
				return &exitError{code: exitFailed, err: err}
			}
			node, err := newNodeTraced(cfg, log, tp)
			if err != nil {
				return err
			}
			// Signals are caught before the gateway listens: a SIGHUP or
			// SIGTERM sent as soon as it answers must not kill it.
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
			if err := node.Start(); err != nil {
				node.Shutdown(context.Background())
				if errors.Is(err, syscall.EADDRINUSE) {
					err = fmt.Errorf("%w; another program (another agentfed serve?) listens there: stop it, or give this gateway another address with --listen or gateway.listen", err)
				}
				return &exitError{code: exitFailed, err: err}
			}
		wait:
			for {
				select {
				case <-ctx.Done():
					break wait
				case <-hup:
					reload(node, file, o)
				}
			}
			log.Info("shutting down", "grace", grace)
			sctx, cancel := context.WithTimeout(context.Background(), grace)
			defer cancel()
			err = node.Shutdown(sctx)
			shutdownTracing(tp, sctx, log)
			if err != nil && !errors.Is(err, context.DeadlineExceeded) {
				return &exitError{code: exitFailed, err: fmt.Errorf("shutdown: %w", err)}
			}
			log.Info("stopped")
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&file, "config", "c", "", "configuration file (YAML or JSON); default ./agentfed.yaml if it exists, else built-in defaults")
	f.StringVar(&listen, "listen", "", "listen address host:port, overriding gateway.listen")
	f.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	f.StringVar(&logFormat, "log-format", "text", "text or json")
	f.DurationVar(&grace, "grace", 10*time.Second, "how long in-flight requests may take to finish on shutdown")
	return cmd
}

// overrides are what serve sets on top of the config file, at start and
// at every reload alike.
type overrides struct {
	listen string // --listen
	log    *slog.Logger
}

// apply sets --listen, and the operator token kept in storage.dir when
// the file sets none: no operator path is left without a token.
func (o overrides) apply(cfg *federation.Config) error {
	if o.listen != "" {
		cfg.Gateway.Listen = o.listen
	}
	if cfg.Gateway.Auth.OperatorToken != "" {
		return nil
	}
	token, created, err := federation.LoadOperatorToken(cfg.Storage.Dir)
	if err != nil {
		return fmt.Errorf("operator token (gateway.auth.operatorToken is not set): %w", err)
	}
	cfg.Gateway.Auth.OperatorToken = token
	path := filepath.Join(cfg.Storage.Dir, federation.OperatorTokenFile)
	if created {
		o.log.Info("generated an operator token; local CLI commands read it from there", "file", path)
	} else {
		o.log.Debug("using the operator token kept in storage.dir", "file", path)
	}
	return nil
}

// reload re-reads the config file on SIGHUP and applies what can change
// without a restart (credentials, static peers). A bad file changes
// nothing.
func reload(node *federation.Node, file string, o overrides) {
	log := o.log
	if file == "" {
		log.Warn("SIGHUP ignored: no --config file to reload")
		return
	}
	cfg, err := config.Load(file)
	if err == nil {
		err = o.apply(cfg)
	}
	if err != nil {
		log.Error("reload failed; keeping the running configuration", "err", err)
		return
	}
	restart, err := node.Reload(cfg)
	if err != nil {
		log.Error("reload failed; keeping the running configuration", "err", err)
		return
	}
	if len(restart) > 0 {
		log.Warn("reload applied credentials and peers; these changes need a restart", "keys", restart)
	}
}

// configFile is the file serve reads when no --config is given, and the
// file init writes by default.
const configFile = "agentfed.yaml"

// defaultConfigFile returns configFile when it exists in the working
// directory, logging that it is used, and "" (built-in defaults) otherwise.
func defaultConfigFile(log *slog.Logger) string {
	if _, err := os.Stat(configFile); errors.Is(err, fs.ErrNotExist) {
		return ""
	}
	abs, _ := filepath.Abs(configFile)
	log.Info("no --config given: using "+configFile+" from the working directory", "config", abs)
	return configFile
}

// loadConfig reads file, or returns the no-config default. A bad file is a
// usage error listing every problem.
func loadConfig(file string) (*federation.Config, error) {
	if file == "" {
		return config.Default(), nil
	}
	cfg, err := config.Load(file)
	if err != nil {
		return nil, &exitError{code: exitUsage, err: err}
	}
	return cfg, nil
}

// newNode builds the handlers of cfg's agents and the node.
func newNode(cfg *federation.Config, log *slog.Logger) (*federation.Node, error) {
	return newNodeTraced(cfg, log, nil)
}

// newNodeTraced is newNode with spans sent to tp (nil: no tracing).
func newNodeTraced(cfg *federation.Config, log *slog.Logger, tp *sdktrace.TracerProvider) (*federation.Node, error) {
	handlers := make(map[string]federation.Handler, len(cfg.Agents))
	var device *gateway.Device // the OpenClaw device identity, loaded for the first openclaw agent
	for i, a := range cfg.Agents {
		h, err := agent.New(a)
		if err != nil {
			return nil, &exitError{code: exitUsage, err: fmt.Errorf("agents[%d] (%s): %w", i, a.ID, err)}
		}
		if oc, ok := h.(*agent.OpenClaw); ok {
			if device == nil {
				if device, err = agent.LoadOpenClawDevice(cfg.Storage.Dir); err != nil {
					return nil, fmt.Errorf("agents[%d] (%s): OpenClaw device identity: %w", i, a.ID, err)
				}
			}
			oc.Device = device
		}
		handlers[a.ID] = h
	}
	opts := federation.Options{Handlers: handlers, Logger: log}
	if tp != nil {
		opts.TracerProvider = tp
	}
	node, err := federation.New(cfg, opts)
	if err != nil {
		return nil, &exitError{code: exitUsage, err: err}
	}
	return node, nil
}

// checkListenFlag refuses a --listen that is not host:port as a usage
// error naming the flag (the config's gateway.listen is checked with the
// rest of the config).
func checkListenFlag(listen string) error {
	if listen == "" {
		return nil
	}
	_, port, err := net.SplitHostPort(listen)
	if err == nil {
		_, err = strconv.ParseUint(port, 10, 16)
	}
	if err != nil {
		return usageErr("--listen %.60q is not host:port with a port from 0 to 65535; write it like 127.0.0.1:18789 (port 0: any free port)", listen)
	}
	return nil
}
