package node

import (
	"net/http"

	"taobox/chain/state"
	"taobox/chain/store"
	"taobox/chain/types"
)

// FirmwareApproval is GET /v1/firmware/{hash}: whether governance approved
// the firmware release whose binary has this SHA-256. A release is
// approved when the latest passed approve_firmware proposal for its
// version names this hash (a later proposal for the same version replaces
// an earlier one, as the state's version → hash record does).
// ChainVersion is the block header version this node runs, which a
// release's manifest may require.
type FirmwareApproval struct {
	Hash         types.Hash `json:"hash"`
	Approved     bool       `json:"approved"`
	Version      string     `json:"version,omitempty"`
	Proposal     uint64     `json:"proposal,omitempty"`
	ChainVersion uint16     `json:"chain_version"`
}

func (n *Node) apiFirmware(r *http.Request) (any, error) {
	h, err := types.ParseHash(r.PathValue("hash"))
	if err != nil {
		return nil, errorf(http.StatusBadRequest, "%v (the release's sha256, 64 hex digits)", err)
	}
	return n.snapshot(func(sn *store.Snapshot) (any, error) {
		g, err := state.QueryGlobals(sn)
		if err != nil {
			return nil, err
		}
		var passed []state.Proposal
		for id := range g.NextProposal {
			p, ok, err := state.QueryProposal(sn, id)
			if err != nil {
				return nil, err
			}
			if ok && p.Status == state.ProposalPassed && p.Action.Kind == types.ActionApproveFirmware {
				passed = append(passed, p)
			}
		}
		a := firmwareApproval(passed, h)
		a.ChainVersion = types.HeaderVersion
		return a, nil
	})
}

// firmwareApproval decides approval from the passed firmware proposals in
// id order (ids grow with time, so a later one is a later decision).
func firmwareApproval(passed []state.Proposal, h types.Hash) FirmwareApproval {
	latest := map[string]state.Proposal{} // version → latest passed proposal
	for _, p := range passed {
		if q, ok := latest[p.Action.FirmwareVersion]; !ok || p.ID > q.ID {
			latest[p.Action.FirmwareVersion] = p
		}
	}
	a := FirmwareApproval{Hash: h}
	for v, p := range latest {
		if p.Action.FirmwareHash == h && (!a.Approved || p.ID > a.Proposal) {
			a.Approved, a.Version, a.Proposal = true, v, p.ID
		}
	}
	return a
}
