package federation_test

import (
	"context"
	"fmt"
	"os"
	"runtime/pprof"
	"testing"

	"github.com/agentfed/agentfed/federation"
)

func BenchmarkZZFan(b *testing.B) {
	n := 256
	var peers []federation.PeerConfig
	for i := range n {
		id := fmt.Sprintf("peer-%03d", i)
		peers = append(peers, echoPeerConf(id, benchNode(b, "bench-"+id, true)))
	}
	main := benchNode(b, "bench-main", false, peers...)
	req := federation.BroadcastRequest{Message: "build status?"}
	for range 20 {
		if _, err := main.Broadcast(context.Background(), req); err != nil {
			b.Fatal(err)
		}
	}
	if p := os.Getenv("ZZPROF"); p != "" {
		f, _ := os.Create(p)
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	if os.Getenv("ZZNSTAT") != "" {
		os.WriteFile("/tmp/nstat-start", nil, 0o644)
		defer os.WriteFile("/tmp/nstat-stop", nil, 0o644)
	}
	if os.Getenv("ZZMODE") == "relay" {
		b.ReportAllocs()
		for b.Loop() {
			mustSend(b, main, "peer-000", "build status?")
		}
		return
	}
	b.ReportAllocs()
	for b.Loop() {
		res, err := main.Broadcast(context.Background(), req)
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range res {
			if r.Status != federation.StatusOK {
				b.Fatalf("peer %s: %s %v", r.PeerID, r.Status, r.Error)
			}
		}
	}
}
