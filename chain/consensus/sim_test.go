package consensus

import (
	"container/heap"
	"fmt"
	"math/rand"
	"os"
	"strconv"
	"testing"
	"time"

	"taobox/chain/types"
)

// fakeSigner signs by hashing (fast; the simulator does not verify).
type fakeSigner struct{ id types.AccountID }

func (s fakeSigner) ID() types.AccountID { return s.id }
func (s fakeSigner) Sign(msg []byte) (sig types.Signature) {
	h := types.HashBytes(s.id[:], msg)
	copy(sig[:], h[:])
	return sig
}

type simItem struct {
	at  time.Duration
	seq int
	to  int
	ev  Event
}

type simCrash struct{}
type simRestart struct{}

func (simCrash) isEvent()   {}
func (simRestart) isEvent() {}

type simQueue []simItem

func (q simQueue) Len() int { return len(q) }
func (q simQueue) Less(i, j int) bool {
	if q[i].at != q[j].at {
		return q[i].at < q[j].at
	}
	return q[i].seq < q[j].seq
}
func (q simQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *simQueue) Push(x any)   { *q = append(*q, x.(simItem)) }
func (q *simQueue) Pop() any {
	old := *q
	it := old[len(old)-1]
	*q = old[:len(old)-1]
	return it
}

type simNode struct {
	n         *Node
	cfg       Config
	hs        *HardState // persisted
	byz       bool
	crashed   bool
	group     int    // partition side
	gossiped  uint64 // height whose archive was last re-gossiped to it
	crashNext bool   // crash inside the next Ready that sends messages
	signer    fakeSigner
	// every signature this validator ever produced, by (h,r,step): the
	// double-sign detector for honest nodes.
	signed map[[3]uint64]types.Hash
}

type sim struct {
	t               testing.TB
	rng             *rand.Rand
	now             time.Duration
	seq             int
	q               simQueue
	nodes           []*simNode
	gst             time.Duration // before: long delays and drops (re-gossiped at GST)
	heal            time.Duration // before: partition groups cannot talk
	dropP           float64
	archive         map[uint64][]Event // every message sent, by height (gossip model)
	decided         map[uint64]types.Hash
	heights         map[int]uint64 // decided heights per node
	bad             map[types.Hash]bool
	blocks          map[types.Hash][]byte // every proposed block (for FetchBlock)
	events          int
	crashedMidReady int
}

func (s *sim) push(at time.Duration, to int, ev Event) {
	s.seq++
	heap.Push(&s.q, simItem{at: at, seq: s.seq, to: to, ev: ev})
}

func (s *sim) delay() time.Duration { return time.Duration(1+s.rng.Intn(50)) * time.Millisecond }

func (s *sim) sendTo(from, to int, ev Event) {
	at := s.now + s.delay()
	if s.now < s.gst {
		at = s.now + time.Duration(s.rng.Intn(1500))*time.Millisecond
		if s.rng.Float64() < s.dropP {
			at = s.gst + s.delay() // dropped, re-gossiped after GST
		}
	}
	if s.now < s.heal && s.nodes[from].group != s.nodes[to].group && at < s.heal {
		at = s.heal + s.delay()
	}
	s.push(at, to, ev)
}

func evHeight(ev Event) uint64 {
	switch e := ev.(type) {
	case Proposal:
		return e.Height
	case Vote:
		return e.Height
	case Commit:
		return e.Cert.Height
	}
	return 0
}

func (s *sim) broadcast(from int, ev Event) {
	if p, ok := ev.(Proposal); ok {
		s.blocks[p.BlockID] = p.Block
	}
	h := evHeight(ev)
	s.archive[h] = append(s.archive[h], ev)
	for j := range s.nodes {
		if j != from {
			s.sendTo(from, j, ev)
		}
	}
}

// regossip models the gossip property for a node that reached height h
// (after deciding or restarting): it receives what was sent at h.
func (s *sim) regossip(i int, h uint64) {
	for _, ev := range s.archive[h] {
		s.push(s.now+s.delay(), i, ev)
	}
}

func (s *sim) process(i int) {
	sn := s.nodes[i]
	for {
		rd := sn.n.Ready()
		if rd.Empty() {
			return
		}
		for _, d := range rd.Decided {
			if !sn.byz {
				if prev, ok := s.decided[d.Height]; ok && prev != d.BlockID {
					s.t.Fatalf("SAFETY: height %d decided %x and %x (node %d)", d.Height, prev[:4], d.BlockID[:4], i)
				}
				if _, ok := s.decided[d.Height]; !ok {
					// gossip of the decided block with its certificate (§6)
					s.broadcast(i, Commit{Block: d.Block, Cert: d.Cert})
				}
				s.decided[d.Height] = d.BlockID
			}
			if got := len(d.Cert.Sigs); got == 0 {
				s.t.Fatalf("decision without certificate")
			}
			s.heights[i] = d.Height
		}
		if rd.HardState != nil {
			// persisted through the codec, as a host would
			hs, err := DecodeHardState(EncodeHardState(rd.HardState))
			if err != nil {
				s.t.Fatalf("hard state codec: %v", err)
			}
			sn.hs = hs
		}
		if sn.crashNext && len(rd.Messages) > 0 {
			// crash after persisting, before sending: remember what was
			// signed (for the double-sign check) and lose the rest
			for _, m := range rd.Messages {
				if m.Vote != nil {
					sn.signed[[3]uint64{m.Vote.Height, uint64(m.Vote.Round), uint64(m.Vote.Type) + 1}] = m.Vote.BlockID
				}
			}
			sn.crashNext, sn.crashed = false, true
			s.crashedMidReady++
			return
		}
		for _, m := range rd.Messages {
			if rd.HardState == nil && sn.hs == nil {
				s.t.Fatalf("node %d sends before persisting", i)
			}
			var ev Event
			var key [3]uint64
			var bid types.Hash
			if m.Proposal != nil {
				ev, key, bid = *m.Proposal, [3]uint64{m.Proposal.Height, uint64(m.Proposal.Round), 1}, m.Proposal.BlockID
				if sn.hs.SignedHeight < m.Proposal.Height {
					s.t.Fatalf("proposal sent before its sign state was persisted")
				}
			} else {
				ev, bid = *m.Vote, m.Vote.BlockID
				key = [3]uint64{m.Vote.Height, uint64(m.Vote.Round), uint64(m.Vote.Type) + 1}
				if sn.hs.SignedHeight < m.Vote.Height {
					s.t.Fatalf("vote sent before its sign state was persisted")
				}
			}
			if prev, ok := sn.signed[key]; ok && prev != bid {
				s.t.Fatalf("DOUBLE SIGN by honest node %d at %v", i, key)
			}
			sn.signed[key] = bid
			s.broadcast(i, ev)
			if sn.byz {
				s.equivocate(i, ev)
			}
		}
		for _, to := range rd.Timeouts {
			s.push(s.now+to.Duration, i, TimeoutFired{Kind: to.Kind, Height: to.Height, Round: to.Round})
		}
		sn.n.Advance(rd)
		for _, rv := range rd.RequestValue {
			blk := []byte(fmt.Sprintf("block h=%d r=%d by=%d t=%d", rv.Height, rv.Round, i, s.now))
			if sn.byz && s.rng.Intn(3) == 0 { // only Byzantine proposers propose invalid blocks
				blk = append(blk, " bad"...)
				s.bad[types.HashBytes(blk)] = true
			}
			sn.n.Step(ValueReady{Height: rv.Height, Round: rv.Round, Block: blk})
		}
		for _, f := range rd.Fetch {
			if b, ok := s.blocks[f.BlockID]; ok {
				s.push(s.now+s.delay(), i, BlockFetched{Height: f.Height, BlockID: f.BlockID, Block: b})
			}
		}
		for _, vr := range rd.Validate {
			sn.n.Step(ValidityResult{Height: vr.Height, BlockID: vr.BlockID, OK: !s.bad[vr.BlockID]})
		}
		if h1, _, _ := sn.n.Position(); h1 != sn.gossiped {
			sn.gossiped = h1
			s.regossip(i, h1)
		}
	}
}

// equivocate makes a Byzantine node also send a conflicting message to a
// random half of the nodes.
func (s *sim) equivocate(i int, ev Event) {
	sn := s.nodes[i]
	var alt Event
	switch e := ev.(type) {
	case Vote:
		e.BlockID = types.HashBytes([]byte(fmt.Sprint("evil", s.rng.Int())))
		if s.rng.Intn(2) == 0 {
			e.BlockID = types.Hash{}
		}
		e.Signature = sn.signer.Sign(e.SignBytes(sn.cfg.ChainID))
		alt = e
	case Proposal:
		e.Block = []byte(fmt.Sprint("evil block", s.rng.Int()))
		e.BlockID = types.HashBytes(e.Block)
		e.POLRound = -1
		e.Signature = sn.signer.Sign(e.SignBytes(sn.cfg.ChainID))
		alt = e
	}
	if p, ok := alt.(Proposal); ok {
		s.blocks[p.BlockID] = p.Block
	}
	s.archive[evHeight(alt)] = append(s.archive[evHeight(alt)], alt)
	for j := range s.nodes {
		if j == i {
			continue
		}
		if s.rng.Intn(2) == 0 {
			s.sendTo(i, j, alt)
		} else {
			// the others get it later, re-gossiped by honest receivers
			s.push(s.now+time.Duration(500+s.rng.Intn(1500))*time.Millisecond, j, alt)
		}
	}
}

type simOpts struct {
	stakes    []uint64
	byz       []int
	crash     int // node to crash and restart, -1 none
	partition bool
	gst, heal time.Duration
	dropP     float64
	heights   uint64
	limit     time.Duration // liveness bound after max(gst, heal, restart)
	groups    []int         // explicit partition sides (with partition)
	check     func(*sim)    // called once, just before heal
}

func randomOpts(rng *rand.Rand, heights uint64) simOpts {
	n := []int{4, 4, 5, 7}[rng.Intn(4)]
	o := simOpts{crash: -1, heights: heights, limit: 120 * time.Second}
	var total uint64
	for i := 0; i < n; i++ {
		st := uint64(1)
		if rng.Intn(2) == 0 {
			st = uint64(1 + rng.Intn(10))
		}
		o.stakes = append(o.stakes, st)
		total += st
	}
	// Byzantine nodes with total stake < 1/3.
	var bs uint64
	for _, i := range rng.Perm(n) {
		if rng.Intn(3) == 0 && 3*(bs+o.stakes[i]) < total {
			o.byz = append(o.byz, i)
			bs += o.stakes[i]
		}
	}
	if rng.Intn(2) == 0 {
		o.gst = time.Duration(rng.Intn(20)) * time.Second
		o.dropP = 0.3
	}
	if rng.Intn(2) == 0 {
		o.partition = true
		o.heal = time.Duration(rng.Intn(20)) * time.Second
	}
	if rng.Intn(2) == 0 {
		o.crash = rng.Intn(n)
	}
	return o
}

func runSim(t testing.TB, seed int64, o simOpts) (decided uint64, s *sim) {
	s = &sim{t: t, rng: rand.New(rand.NewSource(seed)), gst: o.gst, heal: o.heal, dropP: o.dropP,
		archive: map[uint64][]Event{}, decided: map[uint64]types.Hash{}, heights: map[int]uint64{}, bad: map[types.Hash]bool{}, blocks: map[types.Hash][]byte{}}
	var vals []Validator
	for i, st := range o.stakes {
		vals = append(vals, Validator{ID: types.AccountID{byte(i + 1)}, Stake: st})
	}
	vs, err := NewValidatorSet(vals)
	if err != nil {
		t.Fatal(err)
	}
	byz := map[int]bool{}
	for _, b := range o.byz {
		byz[b] = true
	}
	for i := range o.stakes {
		sg := fakeSigner{types.AccountID{byte(i + 1)}}
		cfg := Config{ChainID: types.Hash{7}, Validators: vs, Signer: sg,
			ProposeTimeout: 300 * time.Millisecond, ProposeDelta: 100 * time.Millisecond,
			PrevoteTimeout: 100 * time.Millisecond, PrevoteDelta: 50 * time.Millisecond,
			PrecommitTimeout: 100 * time.Millisecond, PrecommitDelta: 50 * time.Millisecond}
		sn := &simNode{cfg: cfg, byz: byz[i], signer: sg, signed: map[[3]uint64]types.Hash{}}
		if o.partition {
			sn.group = s.rng.Intn(2)
			if o.groups != nil {
				sn.group = o.groups[i]
			}
		}
		s.nodes = append(s.nodes, sn)
	}
	for i, sn := range s.nodes {
		if sn.n, err = NewNode(sn.cfg, nil); err != nil {
			t.Fatal(err)
		}
		s.process(i)
	}
	restartAt := time.Duration(-1)
	if o.crash >= 0 {
		crashAt := time.Duration(s.rng.Intn(5000)) * time.Millisecond
		restartAt = crashAt + time.Duration(s.rng.Intn(10000))*time.Millisecond
		s.push(crashAt, o.crash, simCrash{})
		s.push(restartAt, o.crash, simRestart{})
	}
	deadline := max(o.gst, o.heal, restartAt) + o.limit
	honestDone := func() bool {
		for i, sn := range s.nodes {
			if !sn.byz && s.heights[i] < o.heights {
				return false
			}
		}
		return true
	}
	for s.q.Len() > 0 && !honestDone() {
		it := heap.Pop(&s.q).(simItem)
		if it.at > deadline {
			break
		}
		if o.check != nil && it.at >= o.heal {
			o.check(s)
			o.check = nil
		}
		s.now = it.at
		sn := s.nodes[it.to]
		switch it.ev.(type) {
		case simCrash:
			if s.rng.Intn(2) == 0 {
				sn.crashNext = true
			} else {
				sn.crashed = true
			}
			continue
		case simRestart:
			if !sn.crashed { // still waiting for a Ready to crash in
				sn.crashNext = false
			}
			sn.crashed = false
			if sn.n, err = NewNode(sn.cfg, sn.hs); err != nil {
				t.Fatal(err)
			}
			s.process(it.to)
			h, _, _ := sn.n.Position()
			sn.gossiped = h
			s.regossip(it.to, h)
			continue
		}
		if sn.crashed {
			continue
		}
		s.events++
		sn.n.Step(it.ev)
		s.process(it.to)
	}
	if !honestDone() {
		for i, sn := range s.nodes {
			h, r, st := sn.n.Position()
			lr, _ := sn.n.Locked()
			t.Logf("node %d: h=%d r=%d step=%d locked=%d hs=%+v crashed=%v", i, h, r, st, lr, sn.hs != nil, sn.crashed)
			if s.heights[i] < o.heights {
				for r, vs := range sn.n.precommits {
					for _, q := range vs.Quorums() {
						_, hb := sn.n.blocks[q]
						t.Logf("  r=%d quorum %x block=%v valid=%d fetching=%v decided=%x", r, q[:4], hb, sn.n.valid[q], sn.n.fetching[q], s.decided[h])
					}
				}
				t.Logf("  archive %d msgs at h", len(s.archive[h]))
				for r, vs := range sn.n.precommits {
					t.Logf("  precommits r=%d any=%d by=%v", r, vs.any, vs.by)
				}
				for _, ev := range s.archive[h] {
					if v, ok := ev.(Vote); ok {
						t.Logf("  vote %s r=%d id=%x by %x", v.Type, v.Round, v.BlockID[:4], v.Validator[0])
					}
				}
				for _, ev := range s.archive[h] {
					if p, ok := ev.(Proposal); ok {
						_, inb := s.blocks[p.BlockID]
						t.Logf("  proposal r=%d vr=%d id=%x by %x proposer %x inblocks=%v", p.Round, p.POLRound, p.BlockID[:4], p.Proposer[0], sn.n.Proposer(p.Round)[0], inb)
					}
				}
			}
		}
		t.Fatalf("seed %d: LIVENESS: honest nodes did not all decide %d heights by %v (heights %v, opts %+v)", seed, o.heights, deadline, s.heights, o)
	}
	return uint64(len(s.decided)), s
}

func TestSimulator(t *testing.T) {
	seeds, heights := 300, uint64(3)
	if os.Getenv("TAOBOX_LONG") != "" {
		seeds, heights = 10000, 5
	}
	if v, err := strconv.Atoi(os.Getenv("TAOBOX_SIM_SEEDS")); err == nil {
		seeds = v
	}
	var total uint64
	events := 0
	for seed := 1; seed <= seeds; seed++ {
		o := randomOpts(rand.New(rand.NewSource(int64(seed))), heights)
		d, s := runSim(t, int64(seed), o)
		total += d
		events += s.events
	}
	t.Logf("%d seeds, %d heights decided, %d events, no safety violation", seeds, total, events)
}

func equalOpts(n int) simOpts {
	o := simOpts{crash: -1, heights: 3, limit: 60 * time.Second}
	for i := 0; i < n; i++ {
		o.stakes = append(o.stakes, 1)
	}
	return o
}

// Scenario 17: partition 2|2 decides nothing and does not spin rounds;
// after healing all decide.
func TestSimPartition22(t *testing.T) {
	for seed := int64(1); seed <= 50; seed++ {
		o := equalOpts(4)
		o.partition, o.groups, o.heal = true, []int{0, 0, 1, 1}, 30*time.Second
		o.check = func(s *sim) {
			if len(s.decided) != 0 {
				t.Fatalf("seed %d: decided during a 2|2 partition", seed)
			}
			for i, sn := range s.nodes {
				if _, r, _ := sn.n.Position(); r != 0 {
					t.Fatalf("seed %d: node %d spun to round %d during the partition", seed, i, r)
				}
			}
		}
		runSim(t, seed, o)
	}
}

// Scenario 18: partition 3|1: the three decide; D catches up after healing.
func TestSimPartition31(t *testing.T) {
	for seed := int64(1); seed <= 50; seed++ {
		o := equalOpts(4)
		o.partition, o.groups, o.heal = true, []int{0, 0, 0, 1}, 30*time.Second
		o.check = func(s *sim) {
			for i := 0; i < 3; i++ {
				if s.heights[i] < 3 {
					t.Fatalf("seed %d: node %d decided %d heights during a 3|1 partition", seed, i, s.heights[i])
				}
			}
			if s.heights[3] != 0 {
				t.Fatalf("seed %d: isolated node decided", seed)
			}
		}
		o.heights = 40 // run past heal so D must catch up
		runSim(t, seed, o)
	}
}

// Scenarios 15/16: one equivocator among 4 over many schedules; and W with
// C+D (30%) Byzantine.
func TestSimByzantine(t *testing.T) {
	for seed := int64(1); seed <= 200; seed++ {
		o := equalOpts(4)
		o.byz = []int{int(seed % 4)}
		o.gst, o.dropP = 5*time.Second, 0.3
		runSim(t, seed, o)
		w := simOpts{stakes: []uint64{40, 30, 20, 10}, byz: []int{2, 3}, crash: -1, heights: 3, limit: 60 * time.Second}
		runSim(t, seed, w)
	}
}

// Crash and restart of every node in turn: no double signing (the sim
// fails on any honest double sign) and progress.
func TestSimCrashRestart(t *testing.T) {
	mid := 0
	for seed := int64(1); seed <= 200; seed++ {
		o := equalOpts(4)
		o.crash, o.heights = int(seed%4), 20
		_, s := runSim(t, seed, o)
		mid += s.crashedMidReady
	}
	if mid == 0 {
		t.Fatal("no crash between persist and send was exercised")
	}
	t.Logf("%d crashes between persist and send", mid)
}
