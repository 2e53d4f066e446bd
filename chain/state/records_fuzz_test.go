package state

import (
	"bytes"
	"sort"
	"testing"

	"taobox/chain/types"
)

// recordOf returns an empty record of the kind stored under a key with this
// prefix, or nil for raw values (u64 totals, owners, uids, hashes).
func recordOf(prefix byte) record {
	switch prefix {
	case pGlobals:
		return new(Globals)
	case pAccount:
		return new(Account)
	case pTake:
		return new(Take)
	case pStakers, pRootSetters:
		return new(accounts)
	case pSubnets:
		return new(netuids)
	case pSubnet:
		return new(Subnet)
	case pNeuron:
		return new(Neuron)
	case pWeights, pBonds:
		return new(entries)
	case pCommits:
		return new(commits)
	case pRootWeights:
		return new(RootWeights)
	case pShares:
		return new(shares)
	case pProposal:
		return new(Proposal)
	case pVote:
		return new(Ballot)
	case pOpenProposals:
		return new(ids)
	case pDefaults:
		return new(Hyperparams)
	}
	return nil
}

// recordPrefixes lists the prefixes recordOf knows, in a fixed order.
var recordPrefixes = []byte{pGlobals, pAccount, pTake, pStakers, pRootSetters, pSubnets, pSubnet, pNeuron,
	pWeights, pBonds, pCommits, pRootWeights, pShares, pProposal, pVote, pOpenProposals, pDefaults}

// FuzzDecodeRecord feeds arbitrary bytes to the decoder of every kind of
// state record (a snapshot's chunks carry them from peers): no panic, every
// list within its cap, and whatever decodes re-encodes to the same bytes.
// The seeds are the records of a chain that registered, staked, set
// weights, committed, proposed and voted.
func FuzzDecodeRecord(f *testing.F) {
	h := permitHarness(f)
	h.mustRun(10, types.SetWeights{Netuid: 1, UIDs: []uint16{2, 3}, Weights: []uint16{3, 1}})
	h.mustRun(2, types.SetRootWeights{Hotkey: h.id(10), Netuids: []uint16{1}, Weights: []uint16{1}})
	h.mustRun(2, types.Propose{Action: types.ProposalAction{Kind: types.ActionApproveFirmware, FirmwareHash: types.HashBytes([]byte("fw")), FirmwareVersion: "1.0.0"}, Description: "a release"})
	h.mustRun(4, types.AddStake{Hotkey: h.id(10), Amount: tao})
	h.mustRun(4, types.Vote{Proposal: 0, Aye: false})
	h.mustRun(0, types.SetHyperparam{Netuid: 1, Param: types.ParamCommitReveal, Value: 1})
	h.advance(2)
	h.mustRun(10, types.CommitWeights{Netuid: 1, Commit: types.HashBytes([]byte("c"))})
	h.advance(12)
	keys := make([]string, 0, len(h.st))
	for k := range h.st {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		for i, p := range recordPrefixes {
			if k[0] == p {
				f.Add(uint8(i), []byte(h.st[k]))
			}
		}
	}
	f.Fuzz(func(t *testing.T, kind uint8, b []byte) {
		rec := recordOf(recordPrefixes[int(kind)%len(recordPrefixes)])
		r := types.NewReader(b)
		rec.dec(r)
		if r.Done() != nil {
			return
		}
		if enc := encode(rec); !bytes.Equal(enc, b) {
			t.Fatalf("%T not canonical:\n in  %x\n out %x", rec, b, enc)
		}
	})
}

// TestRecordKindsCovered: every record prefix of a busy state decodes with
// the record kind recordOf gives it (so the fuzzer's seeds are real).
func TestRecordKindsCovered(t *testing.T) {
	h := permitHarness(t)
	seen := map[byte]bool{}
	for k, v := range h.st {
		rec := recordOf(k[0])
		if rec == nil {
			continue
		}
		seen[k[0]] = true
		r := types.NewReader([]byte(v))
		rec.dec(r)
		if err := r.Done(); err != nil {
			t.Fatalf("record %q as %T: %v", k, rec, err)
		}
	}
	for _, p := range []byte{pGlobals, pAccount, pSubnet, pNeuron, pSubnets, pStakers} {
		if !seen[p] {
			t.Errorf("no record with prefix %q in the test state", p)
		}
	}
}
