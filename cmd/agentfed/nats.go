package main

import (
	"encoding/json"
	"errors"

	"github.com/spf13/cobra"

	"github.com/agentfed/agentfed/federation"
)

func newNATSCmd(s *streams) *cobra.Command {
	cmd := &cobra.Command{Use: "nats", Short: "Work with the NATS transport (federation.transport: nats)"}
	var file string
	perms := &cobra.Command{
		Use:   "permissions",
		Short: "Print the NATS users and subject permissions derived from gateway.auth.peers",
		Long: `Print, as a nats-server configuration block (JSON, which nats-server reads),
one NATS user per gateway.auth.peers entry of the configuration, with the
subject permissions derived from its grant: publish only under its own
serverId and not to this gateway's agents its grant excludes; subscribe to
its own agents' subjects only in its own queue group; use only its own
JetStream stream and synced-context bucket; put only its own directory
entry. A gateway embedding nats-server enforces exactly these;
on an external NATS system, configure them (add each user's password, or
put the same lists in its user JWT) so that the receiving gateways can
trust the sender named in each subject.`,
		Args: argNames(),
		RunE: func(_ *cobra.Command, _ []string) error {
			cfg, err := loadConfig(file)
			if err != nil {
				return err
			}
			if cfg.Federation.ServerID == "" {
				return &exitError{code: exitUsage, err: errors.New("federation.serverId is not set in the configuration; the permissions name it")}
			}
			enc := json.NewEncoder(s.out)
			enc.SetEscapeHTML(false) // nats-server reads no \u escapes: keep ">" as it is
			enc.SetIndent("", "  ")
			if err := enc.Encode(natsAuthorization(federation.NATSPermissions(cfg))); err != nil {
				return &exitError{code: exitFailed, err: err}
			}
			return nil
		},
	}
	perms.Flags().StringVarP(&file, "config", "c", configFile, "configuration file")
	cmd.AddCommand(perms)
	return cmd
}

// natsUserConf is one user of a nats-server configuration.
type natsUserConf struct {
	User        string `json:"user"`
	Permissions struct {
		Publish        natsSubjects  `json:"publish"`
		Subscribe      natsSubjects  `json:"subscribe"`
		AllowResponses natsResponses `json:"allow_responses"`
	} `json:"permissions"`
}

type natsSubjects struct {
	Allow []string `json:"allow"`
	Deny  []string `json:"deny,omitempty"`
}

type natsResponses struct {
	Max     int    `json:"max"`
	Expires string `json:"expires"`
}

// natsAuthorization is users as a nats-server "authorization" block.
func natsAuthorization(users []federation.NATSUser) map[string]any {
	conf := []natsUserConf{}
	for _, u := range users {
		var c natsUserConf
		c.User = u.ServerID
		p := u.Permissions
		c.Permissions.Publish = natsSubjects{Allow: p.Publish.Allow, Deny: p.Publish.Deny}
		c.Permissions.Subscribe = natsSubjects{Allow: p.Subscribe.Allow, Deny: p.Subscribe.Deny}
		c.Permissions.AllowResponses = natsResponses{Max: p.Response.MaxMsgs, Expires: p.Response.Expires.String()}
		conf = append(conf, c)
	}
	return map[string]any{"authorization": map[string]any{"users": conf}}
}
