package consensus

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"taobox/chain/types"
)

// StepKind is a step of a round, also the order of signing within a round
// (proposal < prevote < precommit) for the double-sign guard.
type StepKind uint8

const (
	StepPropose   StepKind = 1
	StepPrevote   StepKind = 2
	StepPrecommit StepKind = 3
)

// TimeoutKind names one of the three timers of Algorithm 1.
type TimeoutKind uint8

const (
	TimeoutPropose TimeoutKind = iota + 1
	TimeoutPrevote
	TimeoutPrecommit
)

// Config configures a Node. Durations are only returned in Ready.Timeouts;
// the node never reads a clock.
type Config struct {
	ChainID types.Hash
	// Validators is the set with the proposer priorities it has just before
	// height StartHeight; the set of height h is it incremented
	// h-StartHeight+1 times, once per height (spec §4). At genesis all
	// priorities are zero. A host that restarts far from StartHeight should
	// persist Node.Validators() per height and pass it with StartHeight set
	// to that height's successor, since catching up costs O(heights·n).
	Validators  *ValidatorSet
	StartHeight uint64
	Signer      Signer // nil: a follower that never signs

	ProposeTimeout, ProposeDelta     time.Duration
	PrevoteTimeout, PrevoteDelta     time.Duration
	PrecommitTimeout, PrecommitDelta time.Duration
	// MaxFutureRounds bounds how far past the current round messages are
	// kept (default 64); later ones are dropped (spec §8, unbounded rounds).
	MaxFutureRounds uint32
	// BlockID names a block: the id that proposals, votes and certificates
	// carry. If nil, types.HashBytes of the block bytes. A host whose
	// blocks carry a header may name them by the header hash (so a header
	// and its certificate prove a block without its body); it must then
	// check that the body is bound to the header (roots) before stepping.
	BlockID func(block []byte) types.Hash
}

// DefaultConfig fills CometBFT's default timeouts.
func DefaultConfig(chainID types.Hash, vals *ValidatorSet, signer Signer) Config {
	return Config{ChainID: chainID, Validators: vals, StartHeight: 1, Signer: signer,
		ProposeTimeout: 3 * time.Second, ProposeDelta: 500 * time.Millisecond,
		PrevoteTimeout: time.Second, PrevoteDelta: 500 * time.Millisecond,
		PrecommitTimeout: time.Second, PrecommitDelta: 500 * time.Millisecond,
		MaxFutureRounds: 64}
}

// HardState is what the host must persist (fsync) before sending any
// message of the Ready that carries it: position, locks and the last
// signed (height, round, step) with the signed messages of that round.
type HardState struct {
	Height      uint64
	Round       uint32
	Step        StepKind
	LockedRound int32
	LockedBlock []byte
	ValidRound  int32
	ValidBlock  []byte

	SignedHeight uint64
	SignedRound  uint32
	SignedStep   StepKind // 0: nothing signed yet
	Proposal     *Proposal
	Prevote      *Vote
	Precommit    *Vote
}

// Events accepted by Node.Step: Proposal, Vote, TimeoutFired, ValueReady,
// ValidityResult.
type Event interface{ isEvent() }

func (Proposal) isEvent()       {}
func (Vote) isEvent()           {}
func (TimeoutFired) isEvent()   {}
func (ValueReady) isEvent()     {}
func (ValidityResult) isEvent() {}
func (BlockFetched) isEvent()   {}
func (Commit) isEvent()         {}

// Commit delivers a block decided by others with its certificate (catch-up,
// §6). The host has checked the certificate's signatures
// (VerifyCertificate); the node checks indices and stake again.
type Commit struct {
	Block []byte
	Cert  Certificate
}

// BlockFetched answers a FetchBlock request.
type BlockFetched struct {
	Height  uint64
	BlockID types.Hash
	Block   []byte
}

// FetchBlock asks the host for the block with BlockID at Height: more than
// 2/3 precommitted it but no proposal carrying it arrived (§6).
type FetchBlock struct {
	Height  uint64
	BlockID types.Hash
}

// TimeoutFired delivers a timer that a Ready asked for.
type TimeoutFired struct {
	Kind   TimeoutKind
	Height uint64
	Round  uint32
}

// ValueReady answers a RequestValue: the block to propose.
type ValueReady struct {
	Height uint64
	Round  uint32
	Block  []byte
}

// ValidityResult answers a ValidateRequest (valid(v) of the paper; it must
// be a pure function of the block and the chain prefix).
type ValidityResult struct {
	Height  uint64
	BlockID types.Hash
	OK      bool
}

// Message is one outgoing message: exactly one field is set.
type Message struct {
	Proposal *Proposal
	Vote     *Vote
}

// Timeout asks the host to deliver TimeoutFired{Kind,Height,Round} after
// Duration.
type Timeout struct {
	Kind     TimeoutKind
	Height   uint64
	Round    uint32
	Duration time.Duration
}

// ValueRequest asks the application for a block to propose at (Height, Round).
type ValueRequest struct {
	Height uint64
	Round  uint32
}

// ValidateRequest asks the application whether Block is valid at Height.
type ValidateRequest struct {
	Height  uint64
	BlockID types.Hash
	Block   []byte
}

// Decision is a decided block with its commit certificate.
type Decision struct {
	Height  uint64
	Round   uint32
	BlockID types.Hash
	Block   []byte
	Cert    Certificate
}

// Ready is the work the host must do, in this order: store Decided blocks
// with their certificates; persist HardState (if not nil); then send
// Messages, schedule Timeouts, answer RequestValue and Validate, and report
// Evidence. Then call Advance.
type Ready struct {
	Decided      []Decision
	HardState    *HardState
	Messages     []Message
	Timeouts     []Timeout
	RequestValue []ValueRequest
	Validate     []ValidateRequest
	Fetch        []FetchBlock
	Evidence     []Evidence
}

// Empty reports whether rd holds no work.
func (rd *Ready) Empty() bool {
	return len(rd.Decided) == 0 && rd.HardState == nil && len(rd.Messages) == 0 && len(rd.Timeouts) == 0 &&
		len(rd.RequestValue) == 0 && len(rd.Validate) == 0 && len(rd.Fetch) == 0 && len(rd.Evidence) == 0
}

// round flags ("first time" guards)
const (
	firedR3 = 1 << iota
	firedR4
	firedR6
)

// Node is the Tendermint state machine of one validator (or follower).
type Node struct {
	cfg  Config
	self int

	base      *ValidatorSet // set of the current height (after its increment)
	proposers map[uint32]int

	h     uint64
	round uint32
	step  StepKind

	lockedRound, validRound int32
	lockedID, validID       types.Hash

	blocks     map[types.Hash][]byte
	valid      map[types.Hash]int8 // 1 valid, -1 invalid, 0 unknown
	requested  map[types.Hash]bool
	proposals  map[uint32]*Proposal
	propEv     map[uint32]bool
	prevotes   map[uint32]*VoteSet
	precommits map[uint32]*VoteSet
	senders    map[uint32]map[int]bool
	fired      map[uint32]uint8
	valueAsked map[uint32]bool
	fetching   map[types.Hash]bool
	commits    map[types.Hash]Certificate
	future     []Event

	hs      HardState
	hsDirty bool
	rd      Ready
}

// NewNode starts a node at cfg.StartHeight, or restores it from hs (the last
// persisted HardState) after a restart: it re-broadcasts the messages it
// signed in its current round and never signs another for a step already
// signed.
func NewNode(cfg Config, hs *HardState) (*Node, error) {
	if cfg.Validators == nil || cfg.Validators.Len() == 0 {
		return nil, errors.New("consensus: no validators")
	}
	if cfg.MaxFutureRounds == 0 {
		cfg.MaxFutureRounds = 64
	}
	if cfg.StartHeight == 0 {
		cfg.StartHeight = 1
	}
	if cfg.BlockID == nil {
		cfg.BlockID = func(b []byte) types.Hash { return types.HashBytes(b) }
	}
	n := &Node{cfg: cfg, self: -1}
	if cfg.Signer != nil {
		n.self = cfg.Validators.Index(cfg.Signer.ID())
	}
	h := cfg.StartHeight
	if hs != nil {
		if hs.Height < cfg.StartHeight {
			return nil, fmt.Errorf("consensus: hard state height %d below start %d", hs.Height, cfg.StartHeight)
		}
		h = hs.Height
		n.hs = *hs
	}
	n.base = cfg.Validators.Copy()
	for i := cfg.StartHeight; i <= h; i++ {
		n.base.IncrementProposerPriority(1)
	}
	n.resetHeight(h)
	if hs == nil {
		n.startRound(0)
		return n, nil
	}
	// Restart.
	n.round, n.step = hs.Round, hs.Step
	if hs.LockedRound >= 0 && hs.LockedBlock != nil {
		n.lockedRound, n.lockedID = hs.LockedRound, n.blockID(hs.LockedBlock)
		n.blocks[n.lockedID], n.valid[n.lockedID] = hs.LockedBlock, 1
	}
	if hs.ValidRound >= 0 && hs.ValidBlock != nil {
		n.validRound, n.validID = hs.ValidRound, n.blockID(hs.ValidBlock)
		n.blocks[n.validID], n.valid[n.validID] = hs.ValidBlock, 1
	}
	if n.step == 0 {
		n.step = StepPropose
	}
	if hs.SignedHeight == n.h && hs.SignedRound == n.round {
		if p := hs.Proposal; p != nil && p.Height == n.h && p.Round == n.round {
			n.send(Message{Proposal: p})
			n.valueAsked[n.round] = true
			n.onProposal(*p)
		}
		for _, v := range []*Vote{hs.Prevote, hs.Precommit} {
			if v != nil && v.Height == n.h && v.Round == n.round {
				n.send(Message{Vote: v})
				n.onVote(*v)
			}
		}
	}
	switch n.step {
	case StepPropose:
		if n.isProposer(n.round) && !n.valueAsked[n.round] {
			n.startRound(n.round)
		} else {
			n.schedule(TimeoutPropose, n.round)
		}
	case StepPrevote:
		n.schedule(TimeoutPrevote, n.round)
	case StepPrecommit:
		n.schedule(TimeoutPrecommit, n.round)
	}
	n.run()
	return n, nil
}

func (n *Node) resetHeight(h uint64) {
	n.h = h
	n.proposers = map[uint32]int{}
	n.lockedRound, n.validRound = -1, -1
	n.lockedID, n.validID = types.Hash{}, types.Hash{}
	n.blocks = map[types.Hash][]byte{}
	n.valid = map[types.Hash]int8{}
	n.requested = map[types.Hash]bool{}
	n.proposals = map[uint32]*Proposal{}
	n.propEv = map[uint32]bool{}
	n.prevotes = map[uint32]*VoteSet{}
	n.precommits = map[uint32]*VoteSet{}
	n.senders = map[uint32]map[int]bool{}
	n.fired = map[uint32]uint8{}
	n.valueAsked = map[uint32]bool{}
	n.fetching = map[types.Hash]bool{}
	n.commits = map[types.Hash]Certificate{}
}

func (n *Node) onCommit(c Commit) error {
	if c.Cert.Height != n.h {
		if c.Cert.Height == n.h+1 && len(n.future) < 16*n.base.Len()+16 {
			n.future = append(n.future, c)
		}
		return nil
	}
	id := c.Cert.BlockID
	if id.IsZero() || n.blockID(c.Block) != id {
		return errors.New("consensus: commit block does not match its certificate")
	}
	seen := map[int]bool{}
	var st uint64
	for _, sg := range c.Cert.Sigs {
		if sg.Index < 0 || sg.Index >= n.base.Len() || seen[sg.Index] {
			return errors.New("consensus: commit certificate has a bad or repeated index")
		}
		seen[sg.Index] = true
		st += n.base.At(sg.Index).Stake
	}
	if !TwoThirds(st, n.base.Total()) {
		return errors.New("consensus: commit certificate below 2/3 of the stake")
	}
	if _, ok := n.commits[id]; !ok {
		n.commits[id] = c.Cert
	}
	n.addBlock(id, c.Block)
	return nil
}

func (n *Node) blockID(b []byte) types.Hash { return n.cfg.BlockID(b) }

// Position reports the node's height, round and step.
func (n *Node) Position() (uint64, uint32, StepKind) { return n.h, n.round, n.step }

// Locked reports lockedRound and the id of lockedValue.
func (n *Node) Locked() (int32, types.Hash) { return n.lockedRound, n.lockedID }

// ValidValue reports validRound and the id of validValue.
func (n *Node) ValidValue() (int32, types.Hash) { return n.validRound, n.validID }

// Validators returns a copy of the current height's set with its
// priorities (after the height's increment).
func (n *Node) Validators() *ValidatorSet { return n.base.Copy() }

// Proposer returns the proposer of round r at the current height.
func (n *Node) Proposer(r uint32) types.AccountID { return n.base.At(n.proposerIdx(r)).ID }

func (n *Node) proposerIdx(r uint32) int {
	if i, ok := n.proposers[r]; ok {
		return i
	}
	c := n.base.Copy()
	c.IncrementProposerPriority(int(r)) // one call from the height's base (§4)
	i := n.base.Index(c.Proposer().ID)
	n.proposers[r] = i
	return i
}

func (n *Node) isProposer(r uint32) bool { return n.self >= 0 && n.proposerIdx(r) == n.self }

// Ready returns the pending work; call Advance once it is done.
func (n *Node) Ready() Ready {
	rd := n.rd
	if n.hsDirty {
		hs := n.hardState()
		rd.HardState = &hs
	}
	return rd
}

// HasReady reports whether Ready has work.
func (n *Node) HasReady() bool { rd := n.Ready(); return !rd.Empty() }

// Advance marks the last Ready done.
func (n *Node) Advance(Ready) {
	n.rd = Ready{}
	n.hsDirty = false
}

func (n *Node) hardState() HardState {
	hs := n.hs
	hs.Height, hs.Round, hs.Step = n.h, n.round, n.step
	hs.LockedRound, hs.ValidRound = n.lockedRound, n.validRound
	hs.LockedBlock, hs.ValidBlock = nil, nil
	if n.lockedRound >= 0 {
		hs.LockedBlock = n.blocks[n.lockedID]
	}
	if n.validRound >= 0 {
		hs.ValidBlock = n.blocks[n.validID]
	}
	return hs
}

// Step feeds one event to the node. Errors report a rejected input; the
// node stays usable.
func (n *Node) Step(ev Event) error {
	var err error
	switch e := ev.(type) {
	case Proposal:
		err = n.onProposal(e)
	case Vote:
		err = n.onVote(e)
	case TimeoutFired:
		n.onTimeout(e)
	case ValueReady:
		if e.Height == n.h && e.Round == n.round && n.step == StepPropose && n.isProposer(n.round) {
			n.propose(e.Block, -1)
		}
	case BlockFetched:
		if e.Height == n.h && n.blockID(e.Block) == e.BlockID && n.fetching[e.BlockID] {
			n.addBlock(e.BlockID, e.Block)
		}
	case Commit:
		err = n.onCommit(e)
	case ValidityResult:
		if e.Height == n.h {
			if e.OK {
				n.valid[e.BlockID] = 1
			} else {
				n.valid[e.BlockID] = -1
			}
		}
	default:
		err = fmt.Errorf("consensus: unknown event %T", ev)
	}
	n.run()
	return err
}

func (n *Node) admit(h uint64, r uint32, ev Event) (ok bool, err error) {
	if h == n.h+1 {
		if len(n.future) < 16*n.base.Len()+16 {
			n.future = append(n.future, ev)
		}
		return false, nil
	}
	if h != n.h {
		return false, nil
	}
	if r > n.round+n.cfg.MaxFutureRounds {
		return false, fmt.Errorf("consensus: round %d too far ahead of %d", r, n.round)
	}
	return true, nil
}

func (n *Node) onProposal(p Proposal) error {
	if ok, err := n.admit(p.Height, p.Round, p); !ok {
		return err
	}
	if n.blockID(p.Block) != p.BlockID {
		return errors.New("consensus: proposal block id mismatch")
	}
	pi := n.proposerIdx(p.Round)
	if n.base.At(pi).ID != p.Proposer {
		return fmt.Errorf("consensus: proposal h=%d r=%d not from the proposer", p.Height, p.Round)
	}
	if p.POLRound < -1 || (p.POLRound >= 0 && uint32(p.POLRound) >= p.Round) {
		return fmt.Errorf("consensus: proposal POL round %d for round %d", p.POLRound, p.Round)
	}
	// A proposal from the proposer supplies its block (bound by hash), so
	// R7 can decide it even when an equivocating proposer showed us
	// another value first. Only the first block and one conflicting block
	// of a round are kept (and executed): an equivocating proposer cannot
	// make us store or run more.
	old := n.proposals[p.Round]
	if old == nil || (old.BlockID != p.BlockID && !n.propEv[p.Round]) {
		n.addBlock(p.BlockID, p.Block)
	}
	if old != nil {
		// Two proposals of one block that differ only in POLRound are not
		// evidence (VerifyEvidence wants two block ids, and peers would
		// take unverifiable evidence for misbehaviour).
		if old.BlockID != p.BlockID && !n.propEv[p.Round] {
			n.propEv[p.Round] = true
			n.rd.Evidence = append(n.rd.Evidence, newProposalEvidence(*old, p))
		}
		return nil
	}
	n.proposals[p.Round] = &p
	n.markSender(p.Round, pi)
	return nil
}

func (n *Node) addBlock(id types.Hash, b []byte) {
	if _, ok := n.blocks[id]; !ok {
		n.blocks[id] = b
	}
	if n.valid[id] == 0 && !n.requested[id] {
		n.requested[id] = true
		n.rd.Validate = append(n.rd.Validate, ValidateRequest{Height: n.h, BlockID: id, Block: b})
	}
}

func (n *Node) markSender(r uint32, i int) {
	m := n.senders[r]
	if m == nil {
		m = map[int]bool{}
		n.senders[r] = m
	}
	m[i] = true
}

func (n *Node) onVote(v Vote) error {
	if ok, err := n.admit(v.Height, v.Round, v); !ok {
		return err
	}
	sets := n.prevotes
	switch v.Type {
	case Prevote:
	case Precommit:
		sets = n.precommits
	default:
		return fmt.Errorf("consensus: bad vote type %d", v.Type)
	}
	s := sets[v.Round]
	if s == nil {
		s = NewVoteSet(n.h, v.Round, v.Type, n.base)
		sets[v.Round] = s
	}
	_, ev, err := s.Add(v)
	if err != nil {
		return err
	}
	if ev != nil {
		n.rd.Evidence = append(n.rd.Evidence, *ev)
	}
	n.markSender(v.Round, n.base.Index(v.Validator))
	return nil
}

func (n *Node) onTimeout(t TimeoutFired) {
	if t.Height != n.h || t.Round != n.round {
		return // stale (T1–T3 guards)
	}
	switch t.Kind {
	case TimeoutPropose: // T1
		if n.step == StepPropose {
			n.vote(Prevote, types.Hash{})
			n.setStep(StepPrevote)
		}
	case TimeoutPrevote: // T2
		if n.step == StepPrevote {
			n.vote(Precommit, types.Hash{})
			n.setStep(StepPrecommit)
		}
	case TimeoutPrecommit: // T3
		n.startRound(n.round + 1)
	}
}

func (n *Node) setStep(s StepKind) { n.step = s; n.hsDirty = true }

func (n *Node) schedule(k TimeoutKind, r uint32) {
	var d time.Duration
	switch k {
	case TimeoutPropose:
		d = n.cfg.ProposeTimeout + time.Duration(r)*n.cfg.ProposeDelta
	case TimeoutPrevote:
		d = n.cfg.PrevoteTimeout + time.Duration(r)*n.cfg.PrevoteDelta
	case TimeoutPrecommit:
		d = n.cfg.PrecommitTimeout + time.Duration(r)*n.cfg.PrecommitDelta
	}
	n.rd.Timeouts = append(n.rd.Timeouts, Timeout{Kind: k, Height: n.h, Round: r, Duration: d})
}

// startRound is StartRound(r), lines 11–21.
func (n *Node) startRound(r uint32) {
	n.round, n.step, n.hsDirty = r, StepPropose, true
	if n.isProposer(r) {
		if n.validRound >= 0 {
			n.propose(n.blocks[n.validID], n.validRound)
		} else if !n.valueAsked[r] {
			n.valueAsked[r] = true
			n.rd.RequestValue = append(n.rd.RequestValue, ValueRequest{Height: n.h, Round: r})
		}
	}
	n.schedule(TimeoutPropose, r)
}

// signable is the monotone (height, round, step) guard of privval.
func (n *Node) signable(s StepKind) bool {
	if n.self < 0 {
		return false
	}
	hs := &n.hs
	if hs.SignedStep == 0 {
		return true
	}
	if n.h != hs.SignedHeight {
		return n.h > hs.SignedHeight
	}
	if n.round != hs.SignedRound {
		return n.round > hs.SignedRound
	}
	return s > hs.SignedStep
}

func (n *Node) markSigned(s StepKind) {
	if n.hs.SignedHeight != n.h || n.hs.SignedRound != n.round {
		n.hs.Proposal, n.hs.Prevote, n.hs.Precommit = nil, nil, nil
	}
	n.hs.SignedHeight, n.hs.SignedRound, n.hs.SignedStep = n.h, n.round, s
	n.hsDirty = true
}

func (n *Node) propose(block []byte, vr int32) {
	if !n.signable(StepPropose) {
		return
	}
	p := Proposal{Height: n.h, Round: n.round, POLRound: vr, BlockID: n.blockID(block), Block: block, Proposer: n.base.At(n.self).ID}
	p.Signature = n.cfg.Signer.Sign(p.SignBytes(n.cfg.ChainID))
	n.markSigned(StepPropose)
	n.hs.Proposal = &p
	n.send(Message{Proposal: &p})
	n.valid[p.BlockID] = 1 // our own value (getValue or validValue) is valid
	n.onProposal(p)
}

func (n *Node) vote(t VoteType, id types.Hash) {
	s := StepPrevote
	if t == Precommit {
		s = StepPrecommit
	}
	if !n.signable(s) {
		return
	}
	v := Vote{Type: t, Height: n.h, Round: n.round, BlockID: id, Validator: n.base.At(n.self).ID}
	v.Signature = n.cfg.Signer.Sign(v.SignBytes(n.cfg.ChainID))
	n.markSigned(s)
	if t == Prevote {
		n.hs.Prevote = &v
	} else {
		n.hs.Precommit = &v
	}
	n.send(Message{Vote: &v})
	n.onVote(v)
}

func (n *Node) send(m Message) { n.rd.Messages = append(n.rd.Messages, m) }

// run re-evaluates the rules until none fires, in the order R7, R8,
// R1/R2, R4, R5, R3, R6.
func (n *Node) run() {
	for i := 0; i < 1000 && n.fire(); i++ {
	}
}

func (n *Node) sortedRounds(m map[uint32]*VoteSet) []uint32 {
	rs := make([]uint32, 0, len(m))
	for r := range m {
		rs = append(rs, r)
	}
	slices.Sort(rs)
	return rs
}

func (n *Node) fire() bool {
	// R7: decide on 2f+1 precommits for a block we hold and know valid, any round.
	for _, r := range n.sortedRounds(n.precommits) {
		qs := n.precommits[r].Quorums()
		slices.SortFunc(qs, func(a, b types.Hash) int { return slices.Compare(a[:], b[:]) })
		for _, id := range qs {
			b, ok := n.blocks[id]
			if ok && n.valid[id] == 1 {
				n.decide(r, id, b)
				return true
			}
			if !ok && !n.fetching[id] {
				n.fetching[id] = true
				n.rd.Fetch = append(n.rd.Fetch, FetchBlock{Height: n.h, BlockID: id})
			}
		}
	}
	// R7 through a certificate received for catch-up.
	if len(n.commits) > 0 {
		ids := make([]types.Hash, 0, len(n.commits))
		for id := range n.commits {
			ids = append(ids, id)
		}
		slices.SortFunc(ids, func(a, b types.Hash) int { return slices.Compare(a[:], b[:]) })
		for _, id := range ids {
			if n.valid[id] == 1 {
				c := n.commits[id]
				n.decideWith(c.Round, id, n.blocks[id], c)
				return true
			}
		}
	}
	// R8: f+1 stake of senders in a higher round.
	var skip uint32
	for r, m := range n.senders {
		if r <= n.round || r <= skip {
			continue
		}
		var st uint64
		for i := range m {
			st += n.base.At(i).Stake
		}
		if OneThird(st, n.base.Total()) {
			skip = r
		}
	}
	if skip > n.round {
		n.startRound(skip)
		return true
	}
	p := n.proposals[n.round]
	// R1/R2
	if p != nil && n.step == StepPropose && n.valid[p.BlockID] != 0 {
		ok := n.valid[p.BlockID] == 1
		if p.POLRound < 0 {
			n.prevoteFor(p.BlockID, ok && (n.lockedRound == -1 || n.lockedID == p.BlockID))
			return true
		}
		if n.prevotes[uint32(p.POLRound)].TwoThirdsFor(p.BlockID) {
			n.prevoteFor(p.BlockID, ok && (n.lockedRound <= p.POLRound || n.lockedID == p.BlockID))
			return true
		}
	}
	pv := n.prevotes[n.round]
	// R4
	if p != nil && n.valid[p.BlockID] == 1 && n.step >= StepPrevote && n.fired[n.round]&firedR4 == 0 && pv.TwoThirdsFor(p.BlockID) {
		n.fired[n.round] |= firedR4
		if n.step == StepPrevote {
			n.lockedID, n.lockedRound = p.BlockID, int32(n.round)
			n.vote(Precommit, p.BlockID)
			n.step = StepPrecommit
		}
		n.validID, n.validRound = p.BlockID, int32(n.round)
		n.hsDirty = true
		return true
	}
	// R5
	if n.step == StepPrevote && pv.TwoThirdsFor(types.Hash{}) {
		n.vote(Precommit, types.Hash{})
		n.setStep(StepPrecommit)
		return true
	}
	// R3
	if n.step == StepPrevote && n.fired[n.round]&firedR3 == 0 && pv.TwoThirdsAny() {
		n.fired[n.round] |= firedR3
		n.schedule(TimeoutPrevote, n.round)
		return true
	}
	// R6
	if n.fired[n.round]&firedR6 == 0 && n.precommits[n.round].TwoThirdsAny() {
		n.fired[n.round] |= firedR6
		n.schedule(TimeoutPrecommit, n.round)
		return true
	}
	return false
}

func (n *Node) prevoteFor(id types.Hash, yes bool) {
	if !yes {
		id = types.Hash{}
	}
	n.vote(Prevote, id)
	n.setStep(StepPrevote)
}

func (n *Node) decide(r uint32, id types.Hash, block []byte) {
	n.decideWith(r, id, block, n.precommits[r].Certificate(id))
}

func (n *Node) decideWith(r uint32, id types.Hash, block []byte, cert Certificate) {
	n.rd.Decided = append(n.rd.Decided, Decision{Height: n.h, Round: r, BlockID: id, Block: block, Cert: cert})
	n.base.IncrementProposerPriority(1)
	n.resetHeight(n.h + 1)
	n.startRound(0)
	fut := n.future
	n.future = nil
	for _, ev := range fut {
		switch e := ev.(type) {
		case Proposal:
			n.onProposal(e)
		case Vote:
			n.onVote(e)
		case Commit:
			n.onCommit(e)
		}
	}
}
