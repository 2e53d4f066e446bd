package dashboard

import (
	"context"
	"crypto/ed25519"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"taobox/chain/types"
	"taobox/miner"
	"taobox/miner/minertest"
	"taobox/task"
)

// startMiner serves a real miner (answering random tokens: no model) on a
// loopback UDP port and returns its port and hotkey.
func startMiner(t *testing.T) (uint16, types.AccountID) {
	t.Helper()
	_, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	_, port := minertest.Serve(t, miner.Config{Key: key, Netuid: 1, Chain: minertest.EmptyChain{}, Answer: miner.RandomAnswer(32, 1)})
	return port, types.AccountIDFromPrivateKey(key)
}

func TestProbeAxon(t *testing.T) {
	port, hotkey := startMiner(t)
	ctx := context.Background()

	p := ProbeAxon(ctx, "127.0.0.1", port, hotkey, 5*time.Second, nil)
	if !p.Reachable || !p.Private || p.Reason != "" || p.RTT <= 0 {
		t.Errorf("a serving miner: %+v", p)
	}

	var other types.AccountID
	other[0] = 1
	p = ProbeAxon(ctx, "127.0.0.1", port, other, 5*time.Second, nil)
	if p.Reachable || !strings.Contains(p.Reason, "another key") {
		t.Errorf("pinned to another key: %+v", p)
	}

	p = ProbeAxon(ctx, "", 0, hotkey, 0, nil)
	if p.Reachable || !strings.Contains(p.Reason, "no endpoint is served") {
		t.Errorf("nothing served: %+v", p)
	}

	// A QUIC server of another protocol on the port.
	_, key, _ := ed25519.GenerateKey(nil)
	tc, err := task.ServerTLS(key)
	if err != nil {
		t.Fatal(err)
	}
	tc = tc.Clone()
	tc.NextProtos = []string{"h3"}
	ln, err := quic.ListenAddr("127.0.0.1:0", tc, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept(context.Background())
			if err != nil {
				return
			}
			c.CloseWithError(0, "")
		}
	}()
	p = ProbeAxon(ctx, "127.0.0.1", uint16(ln.Addr().(*net.UDPAddr).Port), types.AccountIDFromPrivateKey(key), 5*time.Second, nil)
	if p.Reachable || !strings.Contains(p.Reason, "does not speak "+task.ALPN) {
		t.Errorf("another protocol: %+v", p)
	}

	// Nobody on the port: no answer (or an ICMP refusal) within the timeout.
	udp, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := uint16(udp.LocalAddr().(*net.UDPAddr).Port)
	udp.Close()
	p = ProbeAxon(ctx, "127.0.0.1", dead, hotkey, 300*time.Millisecond, nil)
	if p.Reachable || p.Reason == "" || strings.HasPrefix(p.Reason, "handshake failed") {
		t.Errorf("a closed port: %+v", p)
	}
}

func TestIsPrivateHost(t *testing.T) {
	for host, want := range map[string]bool{
		"127.0.0.1": true, "::1": true, "10.1.2.3": true, "192.168.1.9": true, "172.20.0.1": true,
		"100.100.1.1": true, "169.254.3.4": true, "0.0.0.0": true, "localhost": true,
		"203.0.113.7": false, "8.8.8.8": false, "2001:db8::1": false, "miner.example.org": false,
	} {
		if got := isPrivateHost(host); got != want {
			t.Errorf("isPrivateHost(%q) = %v", host, got)
		}
	}
}
