package p2p

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"taobox/chain/types"
)

// testChain is the genesis hash the test hosts share.
var testChain = types.Hash{1, 2, 3}

// clock is a settable clock for Config.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type gotMsg struct {
	from    PeerID
	t       types.MsgType
	payload []byte
}

// testHandler records gossip and answers requests: ReqHeaders echoes
// "re:"+payload, ReqChunk is not found, ReqManifest fails, and a payload
// "evil" (gossip or request) is misbehaviour.
type testHandler struct {
	gossip chan gotMsg
	mu     sync.Mutex
	status Status
}

func newTestHandler() *testHandler {
	return &testHandler{gossip: make(chan gotMsg, 1024), status: Status{Head: 7, Finalized: 6, HeadHash: types.Hash{7}}}
}

func (th *testHandler) Gossip(from PeerID, t types.MsgType, payload []byte) error {
	if string(payload) == "evil" {
		return fmt.Errorf("%w: evil payload", ErrMisbehaving)
	}
	th.gossip <- gotMsg{from, t, payload}
	return nil
}

func (th *testHandler) Serve(_ context.Context, _ PeerID, t types.MsgType, payload []byte) ([]byte, error) {
	if string(payload) == "evil" {
		return nil, fmt.Errorf("%w: evil request", ErrMisbehaving)
	}
	switch t {
	case types.ReqHeaders:
		return append([]byte("re:"), payload...), nil
	case types.ReqChunk:
		return nil, fmt.Errorf("chunk %x: %w", payload, ErrNotFound)
	case types.ReqBlocks:
		return bytes.Repeat([]byte{0xab}, len(payload)<<10), nil // payload length KiB (benchmarks)
	}
	return nil, errors.New("boom")
}

func (th *testHandler) Status() Status {
	th.mu.Lock()
	defer th.mu.Unlock()
	return th.status
}

func (th *testHandler) setStatus(s Status) {
	th.mu.Lock()
	th.status = s
	th.mu.Unlock()
}

// next waits for the next gossip message.
func (th *testHandler) next(t *testing.T) gotMsg {
	t.Helper()
	select {
	case m := <-th.gossip:
		return m
	case <-time.After(20 * time.Second):
		t.Fatal("no gossip message within 20 s")
		return gotMsg{}
	}
}

// testLogger discards unless TAOBOX_P2P_LOG is set.
func testLogger() *slog.Logger {
	if os.Getenv("TAOBOX_P2P_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// newHost starts a host on 127.0.0.1:0 with fast dialler timings; mut
// adjusts the config. Close runs at cleanup.
func newHost(t testing.TB, mut func(*Config)) (*Host, *testHandler) {
	t.Helper()
	_, key, err := types.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{
		Key: key, ChainID: testChain, Listen: "127.0.0.1:0",
		DialInterval: 20 * time.Millisecond, PexInterval: 50 * time.Millisecond,
		DialBackoff: 20 * time.Millisecond, DialBackoffMax: 200 * time.Millisecond,
		Logger: testLogger(),
	}
	if mut != nil {
		mut(&cfg)
	}
	th := newTestHandler()
	h, err := New(cfg, th)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	h.Start(context.Background())
	return h, th
}

// addrOf returns "id@host:port" for h.
func addrOf(h *Host) string { return h.ID().String() + "@" + h.Addr().String() }

// connect connects a to b and waits until both list each other.
func connect(t *testing.T, a, b *Host) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := a.Connect(ctx, addrOf(b)); err != nil {
		t.Fatalf("connect: %v", err)
	}
	waitFor(t, "both sides list each other", func() bool { return hasPeer(a, b.ID()) && hasPeer(b, a.ID()) })
}

func hasPeer(h *Host, id PeerID) bool {
	for _, p := range h.Peers() {
		if p.ID == id {
			return true
		}
	}
	return false
}

// waitFor polls cond until it holds (or fails the test after 20 s; this is
// a liveness bound, not a performance assertion).
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func ctx20(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}
