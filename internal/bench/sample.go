package bench

import (
	"bufio"
	"encoding/json"
	"os"
	"runtime"
	"strings"

	"github.com/agentfed/agentfed/federation"
	"github.com/agentfed/agentfed/gateway"
)

// sampleContent is the text every send carries. The envelope of a
// federation.relay request (two UUIDs, agent and server ids, priority,
// timestamps) is most of a frame of about 370 bytes, near the ~300 bytes
// the targets assume.
const sampleContent = "build status?"

// sample is the message every measurement sends.
type sample struct {
	content string
	// frame is a federation.relay request frame carrying content, as a
	// gateway writes it: the payload of the raw WebSocket and NATS
	// baselines, so that they move exactly as many bytes.
	frame []byte
}

// relayFrame is the decoded shape of sample.frame: the baselines decode
// into it so that they do the JSON work a gateway does.
type relayFrame struct {
	Type   string `json:"type"`
	ID     string `json:"id"`
	Method string `json:"method"`
	Params struct {
		TargetAgent string             `json:"targetAgent"`
		Message     federation.Message `json:"message"`
		TimeoutMs   int64              `json:"timeoutMs"`
	} `json:"params"`
}

func newSample() (*sample, error) {
	msg := federation.NewMessage(federation.TypeRequest, "bench-main", "operator", "echo", sampleContent)
	params, err := json.Marshal(federation.RelayParams{TargetAgent: "echo", Message: msg, TimeoutMs: federation.DefaultTimeoutMs})
	if err != nil {
		return nil, err
	}
	frame, err := json.Marshal(gateway.Request{Type: gateway.FrameReq, ID: "1k", Method: federation.MethodRelay, Params: params})
	if err != nil {
		return nil, err
	}
	return &sample{content: sampleContent, frame: frame}, nil
}

// decode parses a baseline message as a gateway parses a relay request.
func decode(b []byte) error {
	var f relayFrame
	return json.Unmarshal(b, &f)
}

func machine() Machine {
	return Machine{
		CPUs:       runtime.NumCPU(),
		GOMAXPROCS: runtime.GOMAXPROCS(0),
		CPUModel:   cpuModel(),
		GoVersion:  runtime.Version(),
		OS:         runtime.GOOS,
		Arch:       runtime.GOARCH,
	}
}

// cpuModel returns the first "model name" of /proc/cpuinfo, or "".
func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
