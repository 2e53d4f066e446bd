package validator

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"taobox/chain/state"
	"taobox/chain/types"
	"taobox/chain/yuma"
	"taobox/internal/syncbuf"
	"taobox/model"
	"taobox/task"
)

type fakeChain struct {
	mu     sync.Mutex
	mg     *state.Metagraph
	height uint64
}

func (c *fakeChain) Metagraph(uint16) (*state.Metagraph, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cp := *c.mg
	cp.Neurons = slices.Clone(c.mg.Neurons)
	return &cp, nil
}

func (c *fakeChain) Height() uint64 { c.mu.Lock(); defer c.mu.Unlock(); return c.height }

// fakeMiner answers tasks in-process the way a miner of the given
// behaviour would, with a simulated response time per token.
type fakeMiner struct {
	key      ed25519.PrivateKey
	behave   string // "honest", "random", "other-model", "down"
	perToken time.Duration
	mu       sync.Mutex
	m        *model.Model
}

type fakeNet struct {
	t      testing.TB
	miners map[string]*fakeMiner
	n      uint64
	mu     sync.Mutex
}

func (f *fakeNet) QueryWith(ctx context.Context, addr string, miner types.AccountID, body task.Body, o task.QueryOptions) (*task.Result, error) {
	fm := f.miners[addr]
	if fm == nil || fm.behave == "down" {
		return nil, errors.New("connection refused")
	}
	pin := miner
	if !o.TLSKey.IsZero() {
		pin = o.TLSKey
	}
	if types.AccountIDFromPrivateKey(fm.key) != pin {
		return nil, errors.New("key mismatch")
	}
	f.mu.Lock()
	f.n++
	qn := f.n
	var req [32]byte
	binary.LittleEndian.PutUint64(req[:], qn)
	req = sha256.Sum256(req[:])
	f.mu.Unlock()
	fm.mu.Lock()
	defer fm.mu.Unlock()
	var toks []task.Token
	switch fm.behave {
	case "honest", "other-model":
		toks = answer(f.t, fm.m, body, req).Tokens
	case "random":
		r := rand.New(rand.NewPCG(qn, 0))
		for range body.MaxTokens {
			toks = append(toks, task.Token{ID: uint32(3 + r.IntN(800)), LogProb: -0.3})
		}
	}
	fin := task.NewFinal(fm.key, req, toks)
	d := time.Duration(len(toks)) * fm.perToken
	return &task.Result{Request: req, Tokens: toks, Final: &fin, FirstToken: fm.perToken, Total: d}, nil
}

func keyN(i int) ed25519.PrivateKey {
	seed := make([]byte, 32)
	seed[0], seed[1] = byte(i), 0xa5
	return ed25519.NewKeyFromSeed(seed)
}

// testNet: uid 0 the validator, uid 1 a fast honest miner, 2 a slow honest
// one, 3 random tokens, 4 another model, 5 down, 6 registered without axon.
func testNet(t *testing.T) (*fakeChain, *fakeNet) {
	fixtures(t)
	mg := &state.Metagraph{Netuid: 1}
	mg.Subnet.N = 7
	mg.Subnet.Hyper = state.Hyperparams{Tempo: 10, WeightsRateLimit: 50, MaxWeightLimit: 65535, MinAllowedWeights: 1, WeightsVersion: 7}
	fn := &fakeNet{t: t, miners: map[string]*fakeMiner{}}
	behaviours := []string{"", "honest", "honest", "random", "other-model", "down", ""}
	for uid, b := range behaviours {
		n := state.NeuronInfo{UID: uint16(uid)}
		n.Hotkey = types.AccountIDFromPrivateKey(keyN(uid))
		n.LastUpdate = 100
		if uid == 0 {
			n.Permit = true
		}
		if b != "" {
			n.Axon = state.Axon{Host: "127.0.0.1", Port: uint16(9000 + uid), TLSKey: n.Hotkey}
			fm := &fakeMiner{key: keyN(uid), behave: b, perToken: time.Millisecond}
			switch b {
			case "honest":
				m, _, err := loadTiny()
				if err != nil {
					t.Fatal(err)
				}
				fm.m = m
				if uid == 2 {
					fm.perToken = 2 * time.Millisecond
				}
			case "other-model":
				fm.m = fix.synth
			}
			fn.miners["127.0.0.1:"+strconv.Itoa(9000+uid)] = fm
		}
		mg.Neurons = append(mg.Neurons, n)
	}
	return &fakeChain{mg: mg, height: 120}, fn
}

type submitted struct {
	mu    sync.Mutex
	calls []types.Call
}

func (s *submitted) submit(c types.Call) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, c)
	return nil
}

func (s *submitted) last() types.Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.calls) == 0 {
		return nil
	}
	return s.calls[len(s.calls)-1]
}

func newTestValidator(t *testing.T, ch *fakeChain, fn *fakeNet, sub *submitted, dir string) *Validator {
	t.Helper()
	v, err := New(Config{
		Key: keyN(0), Netuid: 1, Model: fix.val, Tokenizer: fix.tok, ModelHash: fix.hash,
		Chain: ch, Submit: sub.submit, StateDir: dir, Client: fn, Concurrency: 3, Deadline: 5 * time.Second,
		Rand: rand.New(rand.NewPCG(1, 2)), WeightsVersion: 7,
	})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// The validator pins the TLS key a miner registered with serve: an honest
// miner whose registered key is not its certificate's fails the round, and
// one that registered none is pinned to its hotkey.
func TestRoundPinsRegisteredTLSKey(t *testing.T) {
	ch, fn := testNet(t)
	ch.mg.Neurons[1].Axon.TLSKey = types.AccountID{}
	ch.mg.Neurons[2].Axon.TLSKey = ch.mg.Neurons[1].Hotkey
	v := newTestValidator(t, ch, fn, &submitted{}, t.TempDir())
	rep, err := v.Round(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range rep.Miners {
		switch m.UID {
		case 1:
			if !m.Pass {
				t.Errorf("uid 1 (no TLS key registered): %s", m.Reason)
			}
		case 2:
			if m.Pass || !strings.Contains(m.Reason, "key mismatch") {
				t.Errorf("uid 2 (another TLS key registered): pass %v, %q", m.Pass, m.Reason)
			}
		}
	}
}

func TestRound(t *testing.T) {
	ch, fn := testNet(t)
	sub := &submitted{}
	dir := t.TempDir()
	v := newTestValidator(t, ch, fn, sub, dir)
	rep, err := v.Round(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Miners) != 5 {
		t.Fatalf("%d miners queried, want 5 (uids 1-5)", len(rep.Miners))
	}
	want := map[uint16]struct {
		pass  bool
		round float64
		why   string
	}{
		1: {true, 1, ""}, 2: {true, 0.5, ""}, 3: {false, 0, "mismatch"}, 4: {false, 0, "mismatch"}, 5: {false, 0, "connection refused"},
	}
	for _, m := range rep.Miners {
		t.Logf("uid %d pass=%v tokens=%d tok/s=%.0f round=%.3f score=%.3f %s", m.UID, m.Pass, m.Tokens, m.TokensPerSec, m.RoundScore, m.Score, m.Reason)
		w := want[m.UID]
		if m.Pass != w.pass || !strings.Contains(m.Reason, w.why) || abs(m.RoundScore-w.round) > 1e-9 || abs(m.Score-DefaultAlpha*w.round) > 1e-9 {
			t.Errorf("uid %d: %+v, want %+v", m.UID, m, w)
		}
	}
	// persisted: a new validator on the same directory has the scores
	v2 := newTestValidator(t, ch, fn, sub, dir)
	if got, want := v2.Scores(), v.Scores(); !slices.Equal(got, want) {
		t.Fatalf("after restart %v, want %v", got, want)
	}
	// a second round raises the EMA
	rep, err = v2.Round(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if s := v2.Scores()[0]; s.UID != 1 || abs(s.Score-(0.8*0.2+0.2)) > 1e-9 || s.Rounds != 2 || s.Passes != 2 {
		t.Fatalf("uid 1 after two rounds: %+v", s)
	}
	// uid 1 is replaced by a new hotkey: its score restarts
	ch.mu.Lock()
	ch.mg.Neurons[1].Hotkey = types.AccountIDFromPrivateKey(keyN(77))
	ch.mg.Neurons[1].Axon = state.Axon{}
	ch.mu.Unlock()
	rep, err = v2.Round(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(rep.Reset, 1) {
		t.Fatalf("reset %v, want uid 1", rep.Reset)
	}
	for _, s := range v2.Scores() {
		if s.UID == 1 && s.Score != 0 {
			t.Fatalf("replaced uid 1 kept score %v", s.Score)
		}
	}
	// sampling: one miner per round
	v2.cfg.Sample = 1
	rep, err = v2.Round(context.Background())
	if err != nil || len(rep.Miners) != 1 {
		t.Fatalf("sampled round: %d miners, %v", len(rep.Miners), err)
	}
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

func TestStateFile(t *testing.T) {
	ch, fn := testNet(t)
	dir := t.TempDir()
	path := filepath.Join(dir, StateFile)
	if err := os.WriteFile(path, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := New(Config{Key: keyN(0), Netuid: 1, Model: fix.val, Tokenizer: fix.tok, Chain: ch, Submit: (&submitted{}).submit, StateDir: dir, Client: fn})
	if !errors.Is(err, ErrCorruptState) || !strings.Contains(err.Error(), path) {
		t.Fatalf("corrupt file: err = %v, want ErrCorruptState naming the file", err)
	}
	v, err := New(Config{Key: keyN(0), Netuid: 1, Model: fix.val, Tokenizer: fix.tok, Chain: ch, Submit: (&submitted{}).submit, StateDir: dir, Client: fn, ResetCorrupt: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Scores()) != 0 {
		t.Fatal("reset state has scores")
	}
	if _, err := os.Stat(path + ".corrupt"); err != nil {
		t.Fatalf("corrupt file not kept: %v", err)
	}
	// a second corrupt file does not replace the first; a temporary file
	// a crash left behind is removed at load
	if err := os.WriteFile(path, []byte("{still not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path+".tmp123", []byte("{half"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Config{Key: keyN(0), Netuid: 1, Model: fix.val, Tokenizer: fix.tok, Chain: ch, Submit: (&submitted{}).submit, StateDir: dir, Client: fn, ResetCorrupt: true}); err != nil {
		t.Fatal(err)
	}
	first, _ := os.ReadFile(path + ".corrupt")
	second, _ := os.ReadFile(path + ".corrupt.1")
	if string(first) != "{not json" || string(second) != "{still not json" {
		t.Fatalf("the corrupt files: %q and %q", first, second)
	}
	if _, err := os.Stat(path + ".tmp123"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the stale temporary file is still there: %v", err)
	}
	// another validator's file is refused too
	st := &State{Version: stateVersion, Netuid: 1, Hotkey: types.AccountIDFromPrivateKey(keyN(9))}
	if err := SaveState(path, st); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadState(path, 1, types.AccountIDFromPrivateKey(keyN(0))); !errors.Is(err, ErrCorruptState) {
		t.Fatalf("foreign file: %v", err)
	}
	// no temporary files left behind
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.Contains(e.Name(), ".tmp") {
			t.Fatalf("left %s", e.Name())
		}
	}
}

func TestMaybeSetWeights(t *testing.T) {
	ch, fn := testNet(t)
	sub := &submitted{}
	v := newTestValidator(t, ch, fn, sub, "")
	if ok, err := v.MaybeSetWeights(200); ok || err != nil {
		t.Fatalf("no scores yet: submitted=%v err=%v", ok, err)
	}
	if _, err := v.Round(context.Background()); err != nil {
		t.Fatal(err)
	}
	w, err := v.NextWindow()
	if err != nil || w.Block != 150 || w.Action != "set" {
		t.Fatalf("window %+v %v, want set at 150 (LastUpdate 100 + rate limit 50)", w, err)
	}
	if ok, _ := v.MaybeSetWeights(148); ok {
		t.Fatal("submitted at block 149, before the window")
	}
	ok, err := v.MaybeSetWeights(149)
	if !ok || err != nil {
		t.Fatalf("window open at 150: submitted=%v err=%v", ok, err)
	}
	sw, _ := sub.last().(types.SetWeights)
	// uid 1 round score 1 → EMA 0.2, uid 2 0.5 → 0.1: [65535, 32768]
	if sw.Netuid != 1 || !slices.Equal(sw.UIDs, []uint16{1, 2}) || !slices.Equal(sw.Weights, []uint16{65535, 32768}) || sw.VersionKey != 7 {
		t.Fatalf("submitted %+v", sw)
	}
	if ok, _ := v.MaybeSetWeights(150); ok {
		t.Fatal("resubmitted before the first call landed")
	}
	ch.mu.Lock()
	ch.mg.Neurons[0].LastUpdate = 150
	ch.mu.Unlock()
	if ok, _ := v.MaybeSetWeights(160); ok {
		t.Fatal("submitted inside the rate limit")
	}
	if ok, _ := v.MaybeSetWeights(199); !ok {
		t.Fatal("not submitted at 200")
	}
}

// commitRevealNet is testNet on a commit-reveal subnet (reveal period 1,
// no rate limit) whose last epoch ran at lastEpoch with index epochIndex.
func commitRevealNet(t *testing.T, lastEpoch, epochIndex uint64) (*fakeChain, *fakeNet) {
	ch, fn := testNet(t)
	ch.mg.Subnet.Hyper.CommitReveal = 1
	ch.mg.Subnet.Hyper.RevealPeriod = 1
	ch.mg.Subnet.Hyper.WeightsRateLimit = 0
	ch.mg.Subnet.LastEpoch, ch.mg.Subnet.EpochIndex = lastEpoch, epochIndex
	return ch, fn
}

func TestCommitReveal(t *testing.T) {
	ch, fn := commitRevealNet(t, 100, 5) // epochs at 110, 120, ...
	sub := &submitted{}
	dir := t.TempDir()
	v := newTestValidator(t, ch, fn, sub, dir)
	if _, err := v.Round(context.Background()); err != nil {
		t.Fatal(err)
	}
	if ok, _ := v.MaybeSetWeights(108); ok {
		t.Fatal("committed two blocks before an epoch boundary")
	}
	ok, err := v.MaybeSetWeights(102)
	if !ok || err != nil {
		t.Fatalf("commit: %v %v", ok, err)
	}
	cw, isCommit := sub.last().(types.CommitWeights)
	if !isCommit {
		t.Fatalf("submitted %T, want CommitWeights", sub.last())
	}
	w, _ := v.NextWindow()
	if w.Action != "reveal" || w.Block != 110 {
		t.Fatalf("window %+v, want reveal at 110", w)
	}
	ch.mu.Lock()
	ch.mg.Neurons[0].LastUpdate = 103 // the commit lands in block 103
	ch.mu.Unlock()
	// a restart keeps the salt
	v = newTestValidator(t, ch, fn, sub, dir)
	if ok, _ := v.MaybeSetWeights(105); ok {
		t.Fatal("revealed in the commit's own epoch")
	}
	if ok, err := v.MaybeSetWeights(109); !ok || err != nil {
		t.Fatalf("reveal: %v %v", ok, err)
	}
	rw, isReveal := sub.last().(types.RevealWeights)
	if !isReveal {
		t.Fatalf("submitted %T, want RevealWeights", sub.last())
	}
	if h := types.CommitHash(v.Hotkey(), 1, rw.UIDs, rw.Weights, rw.Salt, rw.VersionKey); h != cw.Commit {
		t.Fatal("the reveal does not match the commit")
	}
	if !slices.Equal(rw.UIDs, []uint16{1, 2}) || !slices.Equal(rw.Weights, []uint16{65535, 32768}) || rw.VersionKey != 7 {
		t.Fatalf("revealed %+v", rw)
	}
	if ok, _ := v.MaybeSetWeights(111); ok {
		t.Fatal("revealed twice in a row")
	}
	// the chain stores the row: the commit is done, the next one may go
	ch.mu.Lock()
	ch.mg.Neurons[0].Weights = []yuma.Entry{{UID: 1, Value: 65535}, {UID: 2, Value: 32768}}
	ch.mu.Unlock()
	if ok, _ := v.MaybeSetWeights(112); !ok {
		t.Fatal("no new commit after the reveal landed")
	}
	if _, isCommit := sub.last().(types.CommitWeights); !isCommit {
		t.Fatalf("submitted %T, want a new commit", sub.last())
	}
}

// A commit's reveal epoch comes from the block it landed in: one that
// landed an epoch later than predicted is revealed an epoch later, one that
// landed on time is never revealed after its reveal epoch (the chain would
// refuse it as expired) but replaced by a new commit, and one that never
// lands is given up after resubmitAfter blocks. NextWindow says the same.
func TestCommitRevealEpochFromChain(t *testing.T) {
	setup := func(t *testing.T) (*fakeChain, *submitted, *Validator) {
		ch, fn := commitRevealNet(t, 100, 5) // epochs at 110, 120, ...
		sub := &submitted{}
		v := newTestValidator(t, ch, fn, sub, t.TempDir())
		if _, err := v.Round(context.Background()); err != nil {
			t.Fatal(err)
		}
		if ok, err := v.MaybeSetWeights(102); !ok || err != nil { // predicted epoch 5
			t.Fatalf("commit: %v %v", ok, err)
		}
		return ch, sub, v
	}
	land := func(ch *fakeChain, block uint64, epochIndex, lastEpoch uint64) {
		ch.mu.Lock()
		ch.mg.Neurons[0].LastUpdate = block
		ch.mg.Subnet.EpochIndex, ch.mg.Subnet.LastEpoch = epochIndex, lastEpoch
		ch.height = block
		ch.mu.Unlock()
	}
	t.Run("landed late", func(t *testing.T) {
		ch, sub, v := setup(t)
		land(ch, 111, 6, 110) // in epoch 6, not 5: reveal in epoch 7 (blocks 120-129)
		if ok, _ := v.MaybeSetWeights(115); ok {
			t.Fatalf("submitted %T in epoch 6", sub.last())
		}
		if w, _ := v.NextWindow(); w.Action != "reveal" || w.Block != 120 {
			t.Fatalf("window %+v, want reveal at 120", w)
		}
		if ok, _ := v.MaybeSetWeights(119); !ok {
			t.Fatal("no reveal at block 120")
		}
		if _, isReveal := sub.last().(types.RevealWeights); !isReveal {
			t.Fatalf("submitted %T, want RevealWeights", sub.last())
		}
	})
	t.Run("expired", func(t *testing.T) {
		ch, sub, v := setup(t)
		land(ch, 103, 7, 120) // landed in epoch 5; the validator was away through epoch 6
		n := len(sub.calls)
		ok, err := v.MaybeSetWeights(122)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			if _, isReveal := sub.last().(types.RevealWeights); isReveal {
				t.Fatal("revealed an expired commit")
			}
		}
		if len(sub.calls) != n+1 {
			t.Fatalf("%d calls, want a new commit", len(sub.calls)-n)
		}
		if _, isCommit := sub.last().(types.CommitWeights); !isCommit {
			t.Fatalf("submitted %T, want a new commit", sub.last())
		}
	})
	// A tempo change moves LastEpoch without running an epoch: the
	// commit's epoch stays the one it landed in, whether the landing was
	// seen before the change or only after it.
	for _, seenBefore := range []bool{true, false} {
		t.Run(fmt.Sprintf("tempo change, landing seen before it %v", seenBefore), func(t *testing.T) {
			ch, sub, v := setup(t)
			land(ch, 103, 5, 100)
			if seenBefore {
				if ok, _ := v.MaybeSetWeights(103); ok {
					t.Fatalf("submitted %T in the commit's epoch", sub.last())
				}
			}
			ch.mu.Lock()
			ch.mg.Subnet.Hyper.Tempo, ch.mg.Subnet.LastEpoch, ch.height = 20, 104, 105 // epoch 6 now runs at 124
			ch.mu.Unlock()
			if ok, _ := v.MaybeSetWeights(110); ok {
				t.Fatalf("submitted %T in epoch 5", sub.last())
			}
			if ok, _ := v.MaybeSetWeights(123); !ok {
				t.Fatal("no reveal at block 124 (epoch 6)")
			}
			if _, isReveal := sub.last().(types.RevealWeights); !isReveal {
				t.Fatalf("submitted %T, want RevealWeights", sub.last())
			}
		})
	}
	t.Run("never landed", func(t *testing.T) {
		ch, sub, v := setup(t)
		ch.mu.Lock()
		ch.height = 110
		ch.mu.Unlock()
		if ok, _ := v.MaybeSetWeights(110); ok {
			t.Fatalf("submitted %T while the commit is in flight", sub.last())
		}
		if w, _ := v.NextWindow(); w.Action != "reveal" || w.Block != 110 {
			t.Fatalf("window %+v, want the predicted reveal at 110", w)
		}
		if ok, _ := v.MaybeSetWeights(102 + commitLostAfter - 1); ok {
			t.Fatal("gave the commit up while it could still land")
		}
		if ok, _ := v.MaybeSetWeights(102 + commitLostAfter); !ok {
			t.Fatal("no new commit after the first was given up")
		}
		if _, isCommit := sub.last().(types.CommitWeights); !isCommit {
			t.Fatalf("submitted %T, want a new commit", sub.last())
		}
	})
}

// A state file written on a chain that was later reset (its calls at
// heights above the new chain's) does not hold weight-setting back.
func TestStateFromResetChain(t *testing.T) {
	ch, fn := commitRevealNet(t, 5000, 500)
	sub := &submitted{}
	dir := t.TempDir()
	v := newTestValidator(t, ch, fn, sub, dir)
	if _, err := v.Round(context.Background()); err != nil {
		t.Fatal(err)
	}
	if ok, err := v.MaybeSetWeights(5002); !ok || err != nil {
		t.Fatalf("commit on the old chain: %v %v", ok, err)
	}
	// The chain is reset; the validator restarts with the same directory.
	ch.mu.Lock()
	ch.mg.Subnet.LastEpoch, ch.mg.Subnet.EpochIndex = 100, 5
	ch.height = 102
	ch.mu.Unlock()
	v = newTestValidator(t, ch, fn, sub, dir)
	if _, err := v.Round(context.Background()); err != nil {
		t.Fatal(err)
	}
	ok, err := v.MaybeSetWeights(102)
	if !ok || err != nil {
		t.Fatalf("no commit on the new chain: %v %v", ok, err)
	}
	if _, isCommit := sub.last().(types.CommitWeights); !isCommit {
		t.Fatalf("submitted %T, want a commit", sub.last())
	}
}

// colluders answers for uids 2 and 3, two hotkeys of one operator with one
// answer cache: a task either has answered before costs one round trip.
// uid 1 is an honest miner three times faster than either.
type colluders struct {
	t      *testing.T
	uids   map[string]int // addr -> uid
	mu     sync.Mutex
	n      int
	cache  map[string][]task.Token
	hits   int
	perTok map[int]time.Duration
}

func (c *colluders) QueryWith(ctx context.Context, addr string, miner types.AccountID, body task.Body, o task.QueryOptions) (*task.Result, error) {
	uid, ok := c.uids[addr]
	if !ok {
		return nil, errors.New("connection refused")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n++
	req := sha256.Sum256([]byte(strconv.Itoa(c.n)))
	k := string(body.Encode())
	var toks []task.Token
	total := time.Millisecond
	if cached, ok := c.cache[k]; ok && uid != 1 {
		toks = cached
		c.hits++
	} else {
		toks = answer(c.t, fix.f32, body, req).Tokens
		total = time.Duration(len(toks)) * c.perTok[uid]
		if uid != 1 {
			c.cache[k] = toks
		}
	}
	fin := task.NewFinal(keyN(uid), req, toks)
	return &task.Result{Request: req, Tokens: toks, Final: &fin, Total: total}, nil
}

// Two colluding hotkeys cannot answer from each other's answers: every
// miner of a round gets its own prompts (Generator.Tasks), so their shared
// cache never hits and the fastest honest miner keeps the best score. With
// one task set for the round (the earlier design) the second colluder
// answered at once, set the best speed, and over 5 rounds the pair scored
// 0.67 + 0.01 against the honest miner's 0.03.
func TestCollusionSharedCache(t *testing.T) {
	fixtures(t)
	mg := &state.Metagraph{Netuid: 1}
	mg.Subnet.N = 4
	mg.Subnet.Hyper = state.Hyperparams{Tempo: 10, WeightsRateLimit: 50, MaxWeightLimit: 65535, MinAllowedWeights: 1}
	c := &colluders{t: t, uids: map[string]int{}, cache: map[string][]task.Token{},
		perTok: map[int]time.Duration{1: time.Millisecond, 2: 3 * time.Millisecond, 3: 3 * time.Millisecond}}
	for uid := range 4 {
		n := state.NeuronInfo{UID: uint16(uid)}
		n.Hotkey = types.AccountIDFromPrivateKey(keyN(uid))
		if uid > 0 {
			n.Axon = state.Axon{Host: "127.0.0.1", Port: uint16(9000 + uid), TLSKey: n.Hotkey}
			c.uids["127.0.0.1:"+strconv.Itoa(9000+uid)] = uid
		}
		mg.Neurons = append(mg.Neurons, n)
	}
	v, err := New(Config{Key: keyN(0), Netuid: 1, Model: fix.val, Tokenizer: fix.tok, ModelHash: fix.hash,
		Chain: &fakeChain{mg: mg, height: 10}, Submit: func(types.Call) error { return nil }, Client: c,
		Concurrency: 1, Tasks: 4, Rand: rand.New(rand.NewPCG(3, 4))})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := v.Round(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	scores := map[uint16]float64{}
	for _, r := range v.Scores() {
		scores[r.UID] = r.Score
	}
	t.Logf("cache hits %d; scores %v", c.hits, scores)
	if c.hits != 0 || scores[1] <= scores[2] || scores[1] <= scores[3] {
		t.Fatalf("the colluders answered %d tasks from their cache; scores %v (the honest uid 1 is 3× faster)", c.hits, scores)
	}
}

// The commit's salt is on disk before the commit is submitted (a validator
// killed right after submitting can still reveal), and a commit whose
// submission failed stays pending (the node may have taken it): it is not
// made again until it is found lost (review: dropping it lost the salt of
// a commit a timed-out submission had delivered).
func TestCommitSavedBeforeSubmit(t *testing.T) {
	ch, fn := commitRevealNet(t, 100, 5)
	dir := t.TempDir()
	var onDisk *PendingCommit
	refuse := false
	v, err := New(Config{
		Key: keyN(0), Netuid: 1, Model: fix.val, Tokenizer: fix.tok, ModelHash: fix.hash,
		Chain: ch, StateDir: dir, Client: fn, Concurrency: 3, Deadline: 5 * time.Second, Rand: rand.New(rand.NewPCG(1, 2)), WeightsVersion: 7,
		Submit: func(c types.Call) error {
			restarted := newTestValidator(t, ch, fn, &submitted{}, dir) // what a restart would load now
			onDisk = restarted.st.Pending
			if cw, ok := c.(types.CommitWeights); !ok || onDisk == nil || onDisk.Hash != cw.Commit {
				t.Errorf("submitting %T with %+v on disk", c, onDisk)
			}
			if refuse {
				return errors.New("node: mempool full")
			}
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Round(context.Background()); err != nil {
		t.Fatal(err)
	}
	refuse = true
	if ok, err := v.MaybeSetWeights(102); ok || err == nil {
		t.Fatalf("a failed submission: %v %v", ok, err)
	}
	if onDisk == nil {
		t.Fatal("nothing was on disk when the commit went out")
	}
	if restarted := newTestValidator(t, ch, fn, &submitted{}, dir); restarted.st.Pending == nil || v.st.Pending == nil || restarted.st.Pending.Hash != onDisk.Hash {
		t.Fatalf("a commit whose submission failed is not kept: on disk %+v, in memory %+v", restarted.st.Pending, v.st.Pending)
	}
	refuse = false
	onDisk = nil
	if ok, err := v.MaybeSetWeights(104); ok || err != nil || onDisk != nil {
		t.Fatalf("committed again while the first may still land: %v %v", ok, err)
	}
	// it never lands: found lost, made again
	if ok, err := v.MaybeSetWeights(102 + commitLostAfter); !ok || err != nil || onDisk == nil { // 166: not in an epoch's last blocks
		t.Fatalf("no new commit after the first was lost: %v %v", ok, err)
	}
}

// The validator sends its own weights version key, not the subnet's: a
// subnet that requires a newer one gets nothing and the error says to
// upgrade; a commit whose key the subnet raised past is not revealed (the
// chain would refuse it) but dropped, and committed again with the key a
// newer validator sends.
func TestWeightsVersion(t *testing.T) {
	ch, fn := testNet(t)
	sub := &submitted{}
	v := newTestValidator(t, ch, fn, sub, t.TempDir()) // sends 7
	if _, err := v.Round(context.Background()); err != nil {
		t.Fatal(err)
	}
	ch.mu.Lock()
	ch.mg.Subnet.Hyper.WeightsVersion = 0 // any key
	ch.mu.Unlock()
	if ok, err := v.MaybeSetWeights(150); !ok || err != nil {
		t.Fatalf("set: %v %v", ok, err)
	}
	if sw := sub.last().(types.SetWeights); sw.VersionKey != 7 {
		t.Fatalf("sent version key %d, want the validator's own 7", sw.VersionKey)
	}
	// not landed yet: the window is the rate limit's after the next block
	if w, _ := v.NextWindow(); w.Action != "set" || w.Block != 151+50 {
		t.Fatalf("window after a set at 150: %+v, want set at 201", w)
	}
	ch.mu.Lock()
	ch.mg.Subnet.Hyper.WeightsVersion = 8
	ch.mg.Neurons[0].LastUpdate = 151
	ch.mu.Unlock()
	n := len(sub.calls)
	if ok, err := v.MaybeSetWeights(300); ok || err == nil || !strings.Contains(err.Error(), "upgrade") {
		t.Fatalf("a subnet requiring key 8: %v %v", ok, err)
	}
	if len(sub.calls) != n {
		t.Fatal("weights were submitted with a key the subnet refuses")
	}

	// commit-reveal: committed with 7, then the subnet requires 8
	ch, fn = commitRevealNet(t, 100, 5)
	sub = &submitted{}
	dir := t.TempDir()
	v = newTestValidator(t, ch, fn, sub, dir)
	if _, err := v.Round(context.Background()); err != nil {
		t.Fatal(err)
	}
	if ok, err := v.MaybeSetWeights(102); !ok || err != nil {
		t.Fatalf("commit: %v %v", ok, err)
	}
	ch.mu.Lock()
	ch.mg.Neurons[0].LastUpdate = 103
	ch.mg.Subnet.Hyper.WeightsVersion = 8
	ch.mu.Unlock()
	n = len(sub.calls)
	if ok, err := v.MaybeSetWeights(111); ok || err == nil {
		t.Fatalf("reveal of a key-7 commit on a key-8 subnet: %v %v", ok, err)
	}
	if len(sub.calls) != n || v.st.Pending != nil {
		t.Fatalf("the stale commit was revealed or kept: %d calls, pending %+v", len(sub.calls)-n, v.st.Pending)
	}
	v, err := New(Config{Key: keyN(0), Netuid: 1, Model: fix.val, Tokenizer: fix.tok, ModelHash: fix.hash,
		Chain: ch, Submit: sub.submit, StateDir: dir, Client: fn, Rand: rand.New(rand.NewPCG(1, 2)), WeightsVersion: 8})
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := v.MaybeSetWeights(112); !ok || err != nil {
		t.Fatalf("a key-8 validator's commit: %v %v", ok, err)
	}
	if _, ok := sub.last().(types.CommitWeights); !ok || v.st.Pending.VersionKey != 8 {
		t.Fatalf("submitted %T, pending %+v", sub.last(), v.st.Pending)
	}
}

// Weights the chain would refuse are not sent (no permit), and a call
// that never lands is logged once, naming its block, before it is sent
// again.
func TestWeightsRefusedOrLost(t *testing.T) {
	ch, fn := testNet(t)
	sub := &submitted{}
	var logs syncbuf.Buffer
	v, err := New(Config{Key: keyN(0), Netuid: 1, Model: fix.val, Tokenizer: fix.tok, ModelHash: fix.hash,
		Chain: ch, Submit: sub.submit, StateDir: t.TempDir(), Client: fn, Rand: rand.New(rand.NewPCG(1, 2)), WeightsVersion: 7,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Round(context.Background()); err != nil {
		t.Fatal(err)
	}
	ch.mu.Lock()
	ch.mg.Neurons[0].Permit = false
	ch.mu.Unlock()
	if ok, err := v.MaybeSetWeights(150); ok || err == nil || !strings.Contains(err.Error(), "no validator permit") {
		t.Fatalf("without a permit: %v %v", ok, err)
	}
	ch.mu.Lock()
	ch.mg.Neurons[0].Permit = true
	ch.mu.Unlock()
	if ok, err := v.MaybeSetWeights(150); !ok || err != nil {
		t.Fatalf("set: %v %v", ok, err)
	}
	// LastUpdate stays at 100: the call never lands
	for h := uint64(151); h < 150+resubmitAfter; h++ {
		if ok, _ := v.MaybeSetWeights(h); ok {
			t.Fatalf("sent again at %d, before resubmitAfter", h)
		}
	}
	if ok, err := v.MaybeSetWeights(150 + resubmitAfter); !ok || err != nil {
		t.Fatalf("resubmit: %v %v", ok, err)
	}
	v.MaybeSetWeights(150 + resubmitAfter + 1)
	if n := strings.Count(logs.String(), "did not land"); n != 1 || !strings.Contains(logs.String(), "submitted=150") {
		t.Fatalf("%d warnings of a lost call:\n%s", n, logs.String())
	}
}
