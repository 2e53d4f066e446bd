package miner

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"taobox/assets"
	"taobox/chain/state"
	"taobox/chain/types"
	"taobox/model"
	"taobox/model/gguf"
	"taobox/task"
)

const testNetuid = 3

// key makes a deterministic ed25519 key.
func key(seed byte) (ed25519.PrivateKey, types.AccountID) {
	k := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, 32))
	var id types.AccountID
	copy(id[:], k.Public().(ed25519.PublicKey))
	return k, id
}

// Test identities: the miner, a staked validator with a permit, a richer
// one, one without a permit, one with little stake, one unregistered.
var (
	minerKey, minerID = key(1)
	valKey, valID     = key(2)
	richKey, richID   = key(3)
	noPermitKey, npID = key(4)
	poorKey, poorID   = key(5)
	strangerKey, _    = key(6)
	testModelHash     = sha256.Sum256(assets.TinyModel())
	testMinStake      = uint64(1000)
)

type fakeChain struct {
	mu  sync.Mutex
	mg  *state.Metagraph
	n   int   // Metagraph calls
	err error // what Metagraph fails with, when set
}

func (c *fakeChain) calls() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

func (c *fakeChain) setErr(err error) {
	c.mu.Lock()
	c.err = err
	c.mu.Unlock()
}

func (c *fakeChain) Metagraph(netuid uint16) (*state.Metagraph, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n++
	if c.err != nil {
		return nil, c.err
	}
	if netuid != testNetuid {
		return nil, errors.New("no such subnet")
	}
	return c.mg, nil
}

func newFakeChain() *fakeChain {
	neuron := func(id types.AccountID, uid uint16, permit bool, stake uint64) state.NeuronInfo {
		return state.NeuronInfo{Neuron: state.Neuron{Hotkey: id, Permit: permit}, UID: uid, Stake: stake}
	}
	return &fakeChain{mg: &state.Metagraph{Netuid: testNetuid, Neurons: []state.NeuronInfo{
		neuron(minerID, 0, false, 0),
		neuron(valID, 1, true, 10_000),
		neuron(richID, 2, true, 1_000_000),
		neuron(npID, 3, false, 10_000),
		neuron(poorID, 4, true, 10),
	}}}
}

func tinyModel(t testing.TB) *model.Model {
	f, err := gguf.Parse(assets.TinyModel())
	if err != nil {
		t.Fatal(err)
	}
	m, err := model.ModelFromGGUF(f)
	if err != nil {
		t.Fatal(err)
	}
	m.SetThreads(1)
	t.Cleanup(func() { m.Close() })
	return m
}

// fixedAnswer emits n tokens (id 7, log-prob -0.5) without a model.
func fixedAnswer(n int) AnswerFunc {
	return func(ctx context.Context, b task.Body, emit func(task.Token) error) error {
		for i := 0; i < n && i < int(b.MaxTokens); i++ {
			if err := emit(task.Token{ID: 7, LogProb: -0.5}); err != nil {
				return err
			}
		}
		return nil
	}
}

type testMiner struct {
	*Miner
	addr   string
	pc     net.PacketConn
	cancel context.CancelFunc
	done   chan error
}

// startMiner serves cfg (filled with test defaults) on 127.0.0.1.
func startMiner(t testing.TB, cfg Config) *testMiner { return startMinerWith(t, cfg, nil) }

// startMinerWith is startMiner with prep run on the Miner before Serve.
func startMinerWith(t testing.TB, cfg Config, prep func(*Miner)) *testMiner {
	t.Helper()
	if cfg.Key == nil {
		cfg.Key = minerKey
	}
	if cfg.Netuid == 0 {
		cfg.Netuid = testNetuid
	}
	if cfg.Chain == nil {
		cfg.Chain = newFakeChain()
	}
	if cfg.ModelHash == ([32]byte{}) {
		cfg.ModelHash = testModelHash
	}
	if cfg.Answer == nil && cfg.Model == nil {
		cfg.Answer = fixedAnswer(1)
	}
	if cfg.Limits.MinStake == 0 {
		cfg.Limits.MinStake = testMinStake
	}
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if prep != nil {
		prep(m)
	}
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	tm := &testMiner{Miner: m, pc: pc, cancel: cancel, done: make(chan error, 1)}
	go func() { tm.done <- m.Serve(ctx, pc) }()
	<-m.Ready()
	tm.addr = m.Addr().String()
	t.Cleanup(func() {
		cancel()
		select {
		case <-tm.done:
		case <-time.After(10 * time.Second):
			t.Error("Serve did not return")
		}
		pc.Close()
	})
	return tm
}

func body(maxTokens uint32) task.Body {
	return task.Body{PromptIDs: []uint32{1, 20, 30}, MaxTokens: maxTokens, ModelHash: testModelHash}
}

func bodyBytes(b task.Body) []byte { return b.Encode() }

// rawConn dials the miner with a pinned TLS config and no task.Client.
func rawConn(t testing.TB, addr string) *quic.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := quic.DialAddr(ctx, addr, task.ClientTLS(minerID), &quic.Config{MaxIdleTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseWithError(0, "") })
	return c
}

// exchange sends raw request bytes on a new stream and returns the frames.
type frame struct {
	typ     byte
	payload []byte
}

func exchange(t testing.TB, c *quic.Conn, req []byte) []frame {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := c.OpenStreamSync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s.SetDeadline(time.Now().Add(10 * time.Second))
	s.Write(req)
	s.Close()
	return readFrames(t, s)
}

func readFrames(t testing.TB, s io.Reader) []frame {
	var out []frame
	fr := task.NewFrameReader(s)
	for {
		typ, p, err := fr.Next()
		if err != nil {
			return out
		}
		out = append(out, frame{typ, append([]byte(nil), p...)})
	}
}

// rejectCode returns the code of a single reject frame (or CodeOK if the
// response ended with a final frame).
func rejectCode(t testing.TB, fs []frame) task.Code {
	t.Helper()
	if len(fs) == 0 {
		t.Fatal("no frames")
	}
	last := fs[len(fs)-1]
	switch last.typ {
	case task.FrameFinal:
		return task.CodeOK
	case task.FrameReject:
		r, err := task.DecodeReject(last.payload)
		if err != nil {
			t.Fatal(err)
		}
		return r.Code
	}
	t.Fatalf("last frame type %d", last.typ)
	return 0
}

// signed builds a request frame signed by k with the given tweaks.
type reqOpt struct {
	key    ed25519.PrivateKey
	netuid uint16
	miner  types.AccountID
	now    time.Time
	body   []byte
	mutate func(e *task.Envelope)
	resign bool // sign again after mutate
}

func signedRequest(t testing.TB, o reqOpt) []byte {
	t.Helper()
	if o.key == nil {
		o.key = valKey
	}
	if o.netuid == 0 {
		o.netuid = testNetuid
	}
	if o.miner == (types.AccountID{}) {
		o.miner = minerID
	}
	if o.now.IsZero() {
		o.now = time.Now()
	}
	if o.body == nil {
		o.body = bodyBytes(body(1))
	}
	var nonce [16]byte
	binary.BigEndian.PutUint64(nonce[:], uint64(time.Now().UnixNano()))
	e, err := task.NewEnvelope(o.key, o.netuid, o.miner, o.body, o.now, bytes.NewReader(nonce[:]))
	if err != nil {
		t.Fatal(err)
	}
	if o.mutate != nil {
		o.mutate(&e)
		if o.resign {
			copy(e.Sig[:], ed25519.Sign(o.key, e.SigningBytes()))
		}
	}
	return task.AppendRequest(nil, &e, o.body)
}

// batchEnvelopes returns n envelopes for body(1) by valKey that one
// signature covers (task.SignBatch), and the body they sign.
func batchEnvelopes(t testing.TB, n int) ([]task.Envelope, []byte) {
	t.Helper()
	b := bodyBytes(body(1))
	es := make([]task.Envelope, n)
	msgs := make([][]byte, n)
	for i := range es {
		var nonce [16]byte
		binary.BigEndian.PutUint64(nonce[:], uint64(time.Now().UnixNano()))
		nonce[15] = byte(i)
		e, err := task.NewEnvelope(valKey, testNetuid, minerID, b, time.Now(), bytes.NewReader(nonce[:]))
		if err != nil {
			t.Fatal(err)
		}
		es[i], msgs[i] = e, e.SigningBytes()
	}
	sig, proofs := task.SignBatch(valKey, msgs)
	for i := range es {
		es[i].Sig, es[i].Proof = sig, proofs[i]
	}
	return es, b
}

func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(p * float64(len(s)-1))
	return s[i]
}
