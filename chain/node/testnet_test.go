package node

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"taobox/chain/consensus"
	"taobox/chain/state"
	"taobox/chain/types"
)

// An in-memory network of real nodes (each on its own goleveldb temp dir):
// every Broadcast is delivered to every other reachable node on its own
// goroutine after a random delay; Request asks the reachable peers in a
// random order. A node can be cut off (all its messages dropped, both
// ways) and healed, or closed and reopened. Every vote that crosses the
// network is recorded, so a test can assert that no validator ever signed
// two different votes for one (height, round, type).

type testNet struct {
	t        testing.TB
	mu       sync.Mutex
	members  map[int]*member
	cut      map[int]bool
	rng      *rand.Rand
	maxDelay time.Duration
	dropP    float64 // probability of dropping one delivery
	wg       sync.WaitGroup
	stopped  bool

	votes     map[voteKey]types.Hash
	conflicts []string
	// byzantine lists validators a test makes equivocate on purpose; their
	// conflicting votes are not counted as double signing.
	byzantine map[types.AccountID]bool
}

type voteKey struct {
	val   types.AccountID
	h     uint64
	r     uint32
	vtype consensus.VoteType
}

type member struct {
	idx    int
	cfg    Config
	node   *Node
	cancel context.CancelFunc
	done   chan error
}

func newTestNet(t testing.TB, seed uint64) *testNet {
	tn := &testNet{t: t, members: map[int]*member{}, cut: map[int]bool{}, rng: rand.New(rand.NewPCG(seed, 1)),
		maxDelay: 5 * time.Millisecond, votes: map[voteKey]types.Hash{}}
	t.Cleanup(tn.stop)
	return tn
}

// endpoint is one node's view of the network.
type endpoint struct {
	tn  *testNet
	idx int
}

func (e endpoint) Broadcast(t types.MsgType, payload []byte) {
	tn := e.tn
	if t == types.MsgVote {
		tn.recordVote(payload)
	}
	tn.mu.Lock()
	defer tn.mu.Unlock()
	if tn.stopped || tn.cut[e.idx] {
		return
	}
	for j := range tn.members {
		if j == e.idx || tn.cut[j] || tn.rng.Float64() < tn.dropP {
			continue
		}
		d := time.Duration(tn.rng.Int64N(int64(tn.maxDelay) + 1))
		tn.wg.Add(1)
		go func() {
			defer tn.wg.Done()
			time.Sleep(d)
			tn.mu.Lock()
			var to *Node
			if m := tn.members[j]; m != nil {
				to = m.node
			}
			cut := tn.cut[j] || tn.cut[e.idx] || tn.stopped
			tn.mu.Unlock()
			if to == nil || cut {
				return
			}
			to.HandleGossip(fmt.Sprint(e.idx), t, payload)
		}()
	}
}

func (e endpoint) Request(ctx context.Context, t types.MsgType, payload []byte) ([]byte, error) {
	tn := e.tn
	tn.mu.Lock()
	var peers []*Node
	if !tn.cut[e.idx] {
		for j, m := range tn.members {
			if j != e.idx && !tn.cut[j] && m.node != nil {
				peers = append(peers, m.node)
			}
		}
	}
	tn.rng.Shuffle(len(peers), func(a, b int) { peers[a], peers[b] = peers[b], peers[a] })
	tn.mu.Unlock()
	for _, p := range peers {
		if resp, err := p.ServeRequest(ctx, t, payload); err == nil {
			return resp, nil
		}
	}
	return nil, ErrNotFound
}

func (tn *testNet) recordVote(payload []byte) {
	ev, err := consensus.DecodeMessage(payload)
	v, ok := ev.(consensus.Vote)
	if err != nil || !ok {
		return
	}
	k := voteKey{v.Validator, v.Height, v.Round, v.Type}
	tn.mu.Lock()
	defer tn.mu.Unlock()
	if tn.byzantine[v.Validator] {
		return
	}
	if old, ok := tn.votes[k]; ok && old != v.BlockID {
		tn.conflicts = append(tn.conflicts, fmt.Sprintf("%s signed %s h=%d r=%d for %s and %s", v.Validator, v.Type, v.Height, v.Round, old, v.BlockID))
	}
	tn.votes[k] = v.BlockID
}

// add registers node idx with cfg (DataDir, Genesis, Authority set by the
// caller) and starts it.
func (tn *testNet) add(idx int, cfg Config) *Node {
	cfg.Network = endpoint{tn, idx}
	m := &member{idx: idx, cfg: cfg}
	tn.mu.Lock()
	tn.members[idx] = m
	tn.mu.Unlock()
	tn.start(idx)
	return m.node
}

func (tn *testNet) start(idx int) {
	tn.t.Helper()
	tn.mu.Lock()
	m := tn.members[idx]
	tn.mu.Unlock()
	n, err := Open(m.cfg)
	if err != nil {
		tn.t.Fatalf("node %d: %v", idx, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	tn.mu.Lock()
	m.node, m.cancel, m.done = n, cancel, done
	tn.mu.Unlock()
}

// kill stops node idx's Run and closes it (its data dir stays).
func (tn *testNet) kill(idx int) {
	tn.t.Helper()
	tn.mu.Lock()
	m := tn.members[idx]
	n := m.node
	m.node = nil
	tn.mu.Unlock()
	if n == nil {
		return
	}
	m.cancel()
	if err := <-m.done; err != nil {
		tn.t.Errorf("node %d: Run: %v", idx, err)
	}
	if err := n.Close(); err != nil {
		tn.t.Errorf("node %d: Close: %v", idx, err)
	}
}

func (tn *testNet) setCut(idx int, cut bool) {
	tn.mu.Lock()
	tn.cut[idx] = cut
	tn.mu.Unlock()
}

func (tn *testNet) node(idx int) *Node {
	tn.mu.Lock()
	defer tn.mu.Unlock()
	return tn.members[idx].node
}

func (tn *testNet) stop() {
	tn.mu.Lock()
	tn.stopped = true
	var idxs []int
	for i := range tn.members {
		idxs = append(idxs, i)
	}
	tn.mu.Unlock()
	for _, i := range idxs {
		tn.kill(i)
	}
	tn.wg.Wait()
	tn.mu.Lock()
	defer tn.mu.Unlock()
	if len(tn.conflicts) > 0 {
		tn.t.Errorf("double signing: %v", tn.conflicts)
	}
}

// waitHeight waits until every listed node's head is at least h. The
// deadline only bounds a hung test; it asserts no speed.
func (tn *testNet) waitHeight(h uint64, idxs ...int) {
	tn.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		low := uint64(1 << 63)
		for _, i := range idxs {
			if n := tn.node(i); n != nil {
				hh, _ := n.Head()
				low = min(low, hh)
			}
		}
		if low >= h && low != 1<<63 {
			return
		}
		if time.Now().After(deadline) {
			for _, i := range idxs {
				if n := tn.node(i); n != nil {
					tn.t.Logf("node %d: %+v", i, n.ConsensusState())
				}
			}
			tn.t.Fatalf("nodes %v did not reach height %d (lowest %d)", idxs, h, low)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// validatorKey is validator i's hotkey (also its consensus key).
func validatorKey(i int) ed25519.PrivateKey { _, k := testKey(5000 + i); return k }

// bftGenesis is testGenesis(4, 1000 TAO) with validators 0..vals-1 as
// authorities of equal power.
func bftGenesis(vals int, power uint64) *state.Genesis {
	g := testGenesis(4, 1000*tao)
	for i := range vals {
		g.Authorities = append(g.Authorities, state.GenesisAuthority{Hotkey: types.AccountIDFromPrivateKey(validatorKey(i)), Power: power})
	}
	g.AuthorityEpoch = 1000
	return g
}

// bftConfig is a fast consensus config over a fresh temp dir.
func bftConfig(t testing.TB, g *state.Genesis, key ed25519.PrivateKey) Config {
	return Config{
		DataDir: t.TempDir(), Genesis: g, Authority: key, BlockTime: 50 * time.Millisecond,
		ProposeTimeout: 300 * time.Millisecond, VoteTimeout: 150 * time.Millisecond,
		Logger: quietLogger(),
	}
}

// checkSameChain checks that the nodes hold identical blocks 1..h (hash
// and state root), each stored with a certificate that verifies against
// the block's authority set, and that block k+1 carries the certificate of
// block k.
func checkSameChain(t testing.TB, h uint64, nodes ...*Node) {
	t.Helper()
	ref := nodes[0]
	for k := uint64(1); k <= h; k++ {
		want, ok, err := ref.Store().Hash(k)
		if err != nil || !ok {
			t.Fatalf("node 0 lacks block %d: %v", k, err)
		}
		raw, _, _ := ref.Store().Header(k)
		hdr, err := types.DecodeHeader(raw)
		if err != nil {
			t.Fatal(err)
		}
		for i, n := range nodes[1:] {
			got, ok, err := n.Store().Hash(k)
			if err != nil || !ok || got != want {
				t.Fatalf("block %d: node %d has %s (%v %v), node 0 has %s", k, i+1, got, ok, err, want)
			}
			raw2, _, _ := n.Store().Header(k)
			h2, _ := types.DecodeHeader(raw2)
			if h2.StateRoot != hdr.StateRoot {
				t.Fatalf("block %d: state roots differ", k)
			}
		}
		certRaw, ok, err := ref.Store().Cert(k)
		if err != nil || !ok {
			t.Fatalf("block %d has no certificate: %v", k, err)
		}
		cert, err := decodeCert(certRaw)
		if err != nil {
			t.Fatal(err)
		}
		setRaw, ok, _ := ref.Store().EpochData(ref.epochOf(k) * ref.epochBlocks)
		if !ok {
			t.Fatalf("no authority set for block %d", k)
		}
		vals, _ := consensus.DecodeValidators(setRaw)
		vs, _ := consensus.NewValidatorSet(vals)
		if cert.BlockID != want || cert.Height != k {
			t.Fatalf("block %d's certificate is for %d %s", k, cert.Height, cert.BlockID)
		}
		if err := consensus.VerifyCertificate(ref.ChainID(), vs, &cert); err != nil {
			t.Fatalf("block %d's certificate: %v", k, err)
		}
		if hdr.ValSetHash != vs.Hash() {
			t.Fatalf("block %d's ValSetHash is not its set's", k)
		}
		if k < h {
			body, ok, _ := ref.Store().Body(k + 1)
			if !ok {
				t.Fatalf("block %d pruned", k+1)
			}
			next, err := types.DecodeBlock(body)
			if err != nil {
				t.Fatal(err)
			}
			// The proposer's certificate: possibly other signers than
			// the one this node stored, but for the same block.
			lc, err := decodeCert(next.LastCommit)
			if err != nil || lc.Height != k || lc.BlockID != want || next.Header.LastCommitHash != types.HashBytes(next.LastCommit) {
				t.Fatalf("block %d does not carry a certificate of block %d: %v", k+1, k, err)
			}
			if err := consensus.VerifyCertificate(ref.ChainID(), vs, &lc); err != nil {
				t.Fatalf("block %d's LastCommit: %v", k+1, err)
			}
		}
	}
}
