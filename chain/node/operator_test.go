package node

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"taobox/chain/state"
	"taobox/chain/store"
	"taobox/chain/types"
	"taobox/internal/syncbuf"
)

// A node whose --validator key is not an authority says so, and a chain
// that makes no block is logged as stalled with what to check.
func TestStallLogged(t *testing.T) {
	g := testGenesis(2, tao)
	g.Authorities = []state.GenesisAuthority{{Hotkey: id(7), Power: 1}, {Hotkey: id(8), Power: 1}}
	var logs syncbuf.Buffer
	cfg := testConfig(t.TempDir(), g)
	cfg.BlockTime, cfg.Now, cfg.StallWarn = 20*time.Millisecond, nil, 100*time.Millisecond
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

// srcNet is a follower's network of one peer, src (no gossip).
type srcNet struct{ src *Node }

func (srcNet) Broadcast(types.MsgType, []byte) {}
func (s srcNet) Request(ctx context.Context, t types.MsgType, payload []byte) ([]byte, error) {
	return s.src.ServeRequest(ctx, t, payload)
}

// A node whose peer pruned its next block says so at WARN, with the
// height and the blocks the peer keeps (it logged only "catch-up request
// failed" at DEBUG, and the stall warning blamed the validators; UX
// walkthrough). A request above the head is "not found" but not pruned.
func TestCatchUpPrunedLogged(t *testing.T) {
	g := testGenesis(2, tao)
	cfg := testConfig(t.TempDir(), g)
	cfg.KeepBlocks, cfg.APIAddr = 5, ""
	src := openNode(t, cfg)
	for range 20 {
		mustProduce(t, src)
	}
	ctx := context.Background()
	_, err := src.ServeRequest(ctx, types.ReqBlocks, RangeRequest{From: 3, Count: 1}.Encode())
	if !errors.Is(err, ErrPruned) || !strings.Contains(err.Error(), "keeps blocks 16 to 20") {
		t.Fatalf("a pruned block: %v, want ErrPruned naming the blocks kept (16 to 20)", err)
	}
	if _, err := src.ServeRequest(ctx, types.ReqBlocks, RangeRequest{From: 21, Count: 1}.Encode()); !errors.Is(err, ErrNotFound) || errors.Is(err, ErrPruned) {
		t.Fatalf("a block above the head: %v, want ErrNotFound, not ErrPruned", err)
	}
	var logs syncbuf.Buffer
	fcfg := testConfig(t.TempDir(), g)
	fcfg.APIAddr, fcfg.Network = "", srcNet{src}
	fcfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	f := openNode(t, fcfg)
	f.triggerCatchUp()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logs.String(), "level=WARN msg=\"catch-up: the peers do not have this node's next block") {
		if time.Now().After(deadline) {
			t.Fatalf("no warning about the pruned block:\n%s", logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if s := logs.String(); !strings.Contains(s, "missing=1") || !strings.Contains(s, "keeps blocks 16 to 20") || !strings.Contains(s, "snapshot") {
		t.Fatalf("the warning does not name the missing height, the blocks kept and the remedy:\n%s", s)
	}
	if f.missing.Load() != 1 {
		t.Fatalf("missing %d, want 1 (the stall warning repeats it)", f.missing.Load())
	}
}
