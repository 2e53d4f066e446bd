package state

import (
	"errors"
	"fmt"
	"slices"

	"taobox/chain/types"
)

// Governance (the seed's "TAO holders govern"), after chain-rules.md §7's
// recommendation, simplified: any coldkey holding at least 1% of all stake
// may propose; every coldkey votes with its total stake at the time it votes
// (a changed vote replaces the earlier one); a proposal passes early when
// ayes exceed half of all stake, fails early when nays reach half, and at
// the end of its voting period passes if turnout reaches the quorum and
// ayes outnumber nays. A passed proposal is enacted in the block that
// decides it.

const (
	pOpenProposals   = 'P' // → []uint64 ids of open proposals
	maxOpenProposals = 10
)

// Proposal states.
const (
	ProposalOpen     = 0
	ProposalPassed   = 1
	ProposalRejected = 2
)

// Proposal is a governance proposal and its tally.
type Proposal struct {
	ID          uint64
	Proposer    types.AccountID
	Action      types.ProposalAction
	Description string
	Start, End  uint64
	Aye, Nay    uint64 // stake
	Status      uint8
}

func (p *Proposal) enc(w *types.Writer) {
	w.U64(p.ID)
	w.Fixed(p.Proposer[:])
	w.U8(uint8(p.Action.Kind))
	w.U8(uint8(p.Action.Param))
	w.U64(p.Action.Value)
	w.Fixed(p.Action.FirmwareHash[:])
	w.String(p.Action.FirmwareVersion)
	w.String(p.Description)
	for _, v := range []uint64{p.Start, p.End, p.Aye, p.Nay} {
		w.U64(v)
	}
	w.U8(p.Status)
}

func (p *Proposal) dec(r *types.Reader) {
	p.ID = r.U64("id")
	r.Fixed("proposer", p.Proposer[:])
	p.Action.Kind = types.ActionKind(r.U8("action.kind"))
	p.Action.Param = types.GlobalParam(r.U8("action.param"))
	p.Action.Value = r.U64("action.value")
	r.Fixed("action.hash", p.Action.FirmwareHash[:])
	p.Action.FirmwareVersion = r.String("action.version", types.MaxTextLen)
	p.Description = r.String("description", types.MaxTextLen)
	for _, f := range []*uint64{&p.Start, &p.End, &p.Aye, &p.Nay} {
		*f = r.U64("tally")
	}
	p.Status = r.U8("status")
}

// Ballot is one coldkey's vote on a proposal.
type Ballot struct {
	Aye    bool
	Weight uint64
}

func (b *Ballot) enc(w *types.Writer) { w.Bool(b.Aye); w.U64(b.Weight) }
func (b *Ballot) dec(r *types.Reader) { b.Aye = r.Bool("aye"); b.Weight = r.U64("weight") }

type ids []uint64

func (l *ids) enc(w *types.Writer) {
	w.Len(len(*l))
	for _, v := range *l {
		w.U64(v)
	}
}

func (l *ids) dec(r *types.Reader) {
	n := r.Len("ids", 1<<16)
	*l = make(ids, n)
	for i := range *l {
		(*l)[i] = r.U64("id")
	}
}

// checkGlobalParam validates a proposed global parameter value.
func checkGlobalParam(p types.GlobalParam, v uint64) error {
	switch p {
	case types.GlobalTransferFee:
		if v > types.RaoPerTAO {
			return fmt.Errorf("transfer_fee above 1 TAO: %d", v)
		}
	case types.GlobalMaxDelegateTake:
		if v > 65535 {
			return fmt.Errorf("max_delegate_take above 65535: %d", v)
		}
	case types.GlobalQuorumPermille:
		if v > 1000 {
			return fmt.Errorf("quorum above 1000‰: %d", v)
		}
	case types.GlobalVotingPeriod:
		if v < 10 || v > 1_000_000 {
			return fmt.Errorf("voting_period outside [10, 1000000]: %d", v)
		}
	case types.GlobalSubnetLimit:
		if v > types.MaxSubnetID {
			return fmt.Errorf("subnet_limit above %d: %d", types.MaxSubnetID, v)
		}
	}
	for _, f := range globalParamFields {
		if f.id == p {
			return nil
		}
	}
	return fmt.Errorf("unknown global parameter %d", p)
}

func (x *exec) propose(coldkey types.AccountID, c types.Propose) error {
	g := x.globals()
	own := x.o.getU64(key(pColdStake, coldkey[:]))
	if g.TotalStake == 0 || own < mulDiv(g.TotalStake, 1, 100) || own == 0 {
		return fmt.Errorf("proposing needs at least 1%% of all stake (%d rao); you have %d rao staked", mulDiv(g.TotalStake, 1, 100), own)
	}
	switch c.Action.Kind {
	case types.ActionSetParam:
		if err := checkGlobalParam(c.Action.Param, c.Action.Value); err != nil {
			return err
		}
	case types.ActionApproveFirmware:
		if c.Action.FirmwareVersion == "" {
			return errors.New("a firmware approval needs a version")
		}
	default:
		return fmt.Errorf("unknown proposal action %d", c.Action.Kind)
	}
	var open ids
	x.o.load(key(pOpenProposals), &open)
	if len(open) >= maxOpenProposals {
		return fmt.Errorf("%d proposals are open, the most allowed", len(open))
	}
	for _, id := range open {
		var p Proposal
		x.o.load(key(pProposal, u64b(id)), &p)
		if p.Proposer == coldkey {
			return fmt.Errorf("you already have proposal %d open", id)
		}
	}
	id := g.NextProposal
	g.NextProposal++
	x.putGlobals(g)
	p := &Proposal{ID: id, Proposer: coldkey, Action: c.Action, Description: c.Description,
		Start: x.height, End: x.height + g.Params.VotingPeriod}
	x.o.store(key(pProposal, u64b(id)), p)
	open = append(open, id)
	x.o.store(key(pOpenProposals), &open)
	x.emit(types.Event{Kind: types.EvProposed, Account: coldkey, Value: id})
	return nil
}

func (x *exec) vote(coldkey types.AccountID, c types.Vote) error {
	var p Proposal
	pk := key(pProposal, u64b(c.Proposal))
	if !x.o.load(pk, &p) {
		return fmt.Errorf("proposal %d does not exist", c.Proposal)
	}
	if p.Status != ProposalOpen {
		return fmt.Errorf("proposal %d is closed", c.Proposal)
	}
	weight := x.o.getU64(key(pColdStake, coldkey[:]))
	if weight == 0 {
		return errors.New("voting needs stake: you have none")
	}
	bk := key(pVote, u64b(c.Proposal), coldkey[:])
	var old Ballot
	if x.o.load(bk, &old) {
		if old.Aye {
			p.Aye -= old.Weight
		} else {
			p.Nay -= old.Weight
		}
	}
	if c.Aye {
		p.Aye += weight
	} else {
		p.Nay += weight
	}
	x.o.store(bk, &Ballot{Aye: c.Aye, Weight: weight})
	x.o.store(pk, &p)
	x.emit(types.Event{Kind: types.EvVoted, Account: coldkey, Value: c.Proposal, Amount: weight})
	return nil
}

// decideProposals closes proposals that reached a decision and enacts the
// passed ones.
func (x *exec) decideProposals() {
	var open ids
	if !x.o.load(key(pOpenProposals), &open) || len(open) == 0 {
		return
	}
	g := x.globals()
	still := open[:0:0]
	for _, id := range open {
		pk := key(pProposal, u64b(id))
		var p Proposal
		x.o.load(pk, &p)
		half := g.TotalStake / 2
		quorum := mulDiv(g.TotalStake, g.Params.QuorumPermille, 1000)
		switch {
		case p.Aye > half:
			p.Status = ProposalPassed
		case p.Nay >= half && p.Nay > 0:
			p.Status = ProposalRejected
		case x.height >= p.End:
			if p.Aye+p.Nay >= quorum && p.Aye > p.Nay {
				p.Status = ProposalPassed
			} else {
				p.Status = ProposalRejected
			}
		default:
			still = append(still, id)
			continue
		}
		x.o.store(pk, &p)
		if p.Status == ProposalPassed {
			x.emit(types.Event{Kind: types.EvProposalPassed, Account: p.Proposer, Value: id})
			x.enact(&p)
			g = x.globals()
		} else {
			x.emit(types.Event{Kind: types.EvProposalRejected, Account: p.Proposer, Value: id})
		}
	}
	if len(still) == 0 {
		x.o.del(key(pOpenProposals))
	} else {
		x.o.store(key(pOpenProposals), &still)
	}
}

// enact carries out a passed proposal.
func (x *exec) enact(p *Proposal) {
	switch p.Action.Kind {
	case types.ActionSetParam:
		g := x.globals()
		for _, f := range globalParamFields {
			if f.id == p.Action.Param {
				*f.get(&g.Params) = p.Action.Value
			}
		}
		x.putGlobals(g)
		x.emit(types.Event{Kind: types.EvParamChanged, UID: uint16(p.Action.Param), Value: p.Action.Value})
	case types.ActionApproveFirmware:
		x.o.set(key(pFirmware, []byte(p.Action.FirmwareVersion)), slices.Clone(p.Action.FirmwareHash[:]))
		x.emit(types.Event{Kind: types.EvFirmwareApproved, Value: p.ID})
	}
}
