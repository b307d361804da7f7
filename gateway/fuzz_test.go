package gateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/agentfed/agentfed/gateway"
	"github.com/coder/websocket"
)

// FuzzServerFrames sends arbitrary bytes as the first and second frames of
// a real connection to a live server, and checks that whatever the server
// answers is well formed and that it keeps serving well-behaved clients.
func FuzzServerFrames(f *testing.F) {
	connect := connectFrame("c", 4, 4)
	echo := `{"type":"req","id":"e","method":"echo","params":{"x":1}}`
	for _, seed := range [][2]string{
		{connect, echo},
		{connect, connect},
		{connect, `{"type":"req","id":"p","method":"panic"}`},
		{connect, `{"type":"req","id":"w","method":"whoami"}`},
		{connect, `{"type":"req","id":"1"}`},
		{connect, `{"type":"res","id":"1","ok":true}`},
		{connect, `{"type":"event","event":"tick"}`},
		{connect, `{"type":"` + strings.Repeat("é", 70) + `"}`},
		{connect, `not json`},
		{connect, ``},
		{connectFrame("c", 3, 3), echo},
		{connectFrame("c", 5, 6), echo},
		{connectFrame(strings.Repeat("i", 129), 4, 4), echo},
		{`{"type":"req","id":"c","method":"connect","params":null}`, echo},
		{`{"type":"req","id":"c","method":"connect","params":{"minProtocol":"x"}}`, echo},
		{`{"type":"req","id":"c","method":"connect","params":{"minProtocol":4,"maxProtocol":4,"role":"peer","auth":{"token":"t"}}}`, echo},
		{`{"type":"req","id":"1","method":"federation.health"}`, connect},
		{`{"type":"event","event":"connect"}`, connect},
		{`[]`, `{}`},
		{"\x00\xff", "\xc3"},
	} {
		f.Add([]byte(seed[0]), []byte(seed[1]))
	}
	// One server for every input: it must survive all of them.
	srv := startServer(f, &gateway.Server{HandshakeTimeout: 2 * time.Second, MaxPayload: 64 << 10})

	f.Fuzz(func(t *testing.T, first, second []byte) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ws, _, err := websocket.Dial(ctx, srv.URL, nil)
		if err != nil {
			t.Fatalf("server stopped accepting: %v", err)
		}
		defer ws.CloseNow()

		frames := make(chan []byte, 16)
		readErr := make(chan error, 1)
		go func() {
			defer close(frames)
			for {
				_, data, err := ws.Read(ctx)
				if err != nil {
					readErr <- err
					return
				}
				frames <- data
			}
		}()
		ws.Write(ctx, websocket.MessageText, first) // either may fail once the server closes
		ws.Write(ctx, websocket.MessageText, second)
		ws.Close(websocket.StatusNormalClosure, "done")

		for data := range frames {
			var fr struct {
				Type  string         `json:"type"`
				Event string         `json:"event"`
				OK    bool           `json:"ok"`
				Error *gateway.Error `json:"error"`
			}
			if err := json.Unmarshal(data, &fr); err != nil {
				t.Errorf("server sent a frame that is not JSON: %q", data)
				continue
			}
			switch {
			case fr.Type == gateway.FrameEvent && fr.Event != "":
			case fr.Type == gateway.FrameRes && fr.OK != (fr.Error != nil):
				if fr.Error != nil && fr.Error.Code == "" {
					t.Errorf("error response without a code: %s", data)
				}
			default:
				t.Errorf("server sent a malformed frame: %s", data)
			}
		}
		var ce websocket.CloseError
		if err := <-readErr; errors.As(err, &ce) && !utf8.ValidString(ce.Reason) {
			t.Errorf("close reason %q is not valid UTF-8", ce.Reason)
		}
		checkServing(t, srv.URL)
	})
}
