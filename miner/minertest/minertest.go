// Package minertest serves real miners on loopback for other packages'
// tests (the dashboard's probe, the node's connect-back probe, taobox
// status).
package minertest

import (
	"context"
	"net"
	"testing"

	"taobox/chain/state"
	"taobox/chain/types"
	"taobox/miner"
)

// EmptyChain is a miner's chain view with no neurons: a client can
// handshake, but every task is refused as unregistered.
type EmptyChain struct{}

// Metagraph implements miner.Chain.
func (EmptyChain) Metagraph(netuid uint16) (*state.Metagraph, error) {
	return &state.Metagraph{Netuid: types.Netuid(netuid)}, nil
}

// Serve runs a miner of cfg on a 127.0.0.1 UDP port until the test ends,
// waits until it accepts connections, and returns it with its port.
func Serve(t testing.TB, cfg miner.Config) (*miner.Miner, uint16) {
	t.Helper()
	mn, err := miner.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mn.Serve(ctx, conn) }()
	t.Cleanup(func() {
		cancel()
		<-done
		conn.Close()
	})
	<-mn.Ready()
	return mn, uint16(conn.LocalAddr().(*net.UDPAddr).Port)
}
