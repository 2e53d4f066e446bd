package node

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"taobox/chain/state"
	"taobox/chain/store"
	"taobox/internal/syncbuf"
)

// A node whose --validator key is not an authority says so, and a chain
// that makes no block is logged as stalled with what to check.
func TestStallLogged(t *testing.T) {
	g := testGenesis(2, tao)
	g.Authorities = []state.GenesisAuthority{{Hotkey: id(7), Power: 1}, {Hotkey: id(8), Power: 1}}
	var logs syncbuf.Buffer
	cfg := testConfig(t.TempDir(), g)
	cfg.BlockTime, cfg.Now = 20*time.Millisecond, nil
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	n := openNode(t, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logs.String(), "no new block") {
		if time.Now().After(deadline) {
			t.Fatalf("no stall logged:\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if s := logs.String(); !strings.Contains(s, "not in the current authority set") || !strings.Contains(s, "role=\"validator key outside the authority set\"") {
		t.Fatalf("the key outside the set is not reported:\n%s", s)
	}
}

// A busy API port fails Open before anything is written: the data dir
// gets no genesis block.
func TestOpenBusyAPIWritesNothing(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dir := t.TempDir()
	cfg := testConfig(dir, testGenesis(2, tao))
	cfg.APIAddr = ln.Addr().String()
	if _, err := Open(cfg); err == nil || !strings.Contains(err.Error(), "pick another port") {
		t.Fatalf("Open on a busy API port: %v", err)
	}
	st, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, _, ok := st.Head(); ok {
		t.Fatal("a genesis block was committed")
	}
}
