package federation

import (
	"strings"
	"testing"
)

// FuzzWireChecks holds the checks on what a peer sends to their promises:
// a message that passes Validate carries only well-formed identifiers;
// no error quotes more than a bounded part of the input; an
// unauthenticated name that passes is an identifier no configured serverId
// resembles.
func FuzzWireChecks(f *testing.F) {
	f.Add([]byte(`{"targetAgent":"echo","message":{"messageId":"0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b","fromServer":"main-agent-server","fromAgent":"agent-research-01","toAgent":"echo","type":"request","content":"hi","timestamp":1}}`), "main-agent-server")
	f.Add([]byte(`{"message":{"messageId":"a b","fromServer":"s","type":"sync","correlationId":"user@host:1"}}`), "Signer")
	f.Add([]byte(`{"message":{"messageId":"\u0000","fromServer":"\n","type":"x","priority":"\u00ff"}}`), "signer ")
	f.Fuzz(func(t *testing.T, raw []byte, name string) {
		var p RelayParams
		if p.UnmarshalJSON(raw) == nil && p.Message != nil {
			m := p.Message
			err := m.Validate()
			if err != nil && len(err.Error()) > 512 {
				t.Fatalf("Validate's error is %d bytes long", len(err.Error()))
			}
			if err == nil {
				for _, id := range []string{m.MessageID, m.FromServer, m.FromAgent, m.ToAgent, m.CorrelationID} {
					if id != "" && !validIdent(id) {
						t.Fatalf("Validate passed the identifier %q", id)
					}
				}
			}
		}
		if q := quoteBounded(name); len(q) > 300 {
			t.Fatalf("quoteBounded made %d bytes", len(q))
		}
		creds := []PeerCredential{{ServerID: "signer"}}
		err := checkUnauthenticatedName(name, creds)
		switch {
		case err != nil && len(err.Error()) > 512:
			t.Fatalf("the refusal of a %d-byte name is %d bytes long", len(name), len(err.Error()))
		case err == nil && (!validIdent(name) || strings.EqualFold(name, "signer")):
			t.Fatalf("the unauthenticated name %q passed beside the configured \"signer\"", name)
		}
	})
}
