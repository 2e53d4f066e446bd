package node

import (
	"testing"

	"taobox/chain/state"
	"taobox/chain/types"
)

func TestFirmwareApproval(t *testing.T) {
	h1, h2, h3 := types.HashBytes([]byte("1")), types.HashBytes([]byte("2")), types.HashBytes([]byte("3"))
	fw := func(id uint64, h types.Hash, v string) state.Proposal {
		return state.Proposal{ID: id, Status: state.ProposalPassed,
			Action: types.ProposalAction{Kind: types.ActionApproveFirmware, FirmwareHash: h, FirmwareVersion: v}}
	}
	passed := []state.Proposal{fw(0, h1, "1.0"), fw(2, h2, "1.1"), fw(5, h3, "1.1"), fw(7, h1, "1.0-lts")}
	for _, tc := range []struct {
		name     string
		h        types.Hash
		approved bool
		version  string
		proposal uint64
	}{
		{"approved twice: the latest proposal", h1, true, "1.0-lts", 7},
		{"replaced by a later proposal for its version", h2, false, "", 0},
		{"the replacement", h3, true, "1.1", 5},
		{"never proposed", types.HashBytes([]byte("x")), false, "", 0},
	} {
		a := firmwareApproval(passed, tc.h)
		if a.Hash != tc.h || a.Approved != tc.approved || a.Version != tc.version || a.Proposal != tc.proposal {
			t.Errorf("%s: %+v", tc.name, a)
		}
	}
	if a := firmwareApproval(nil, h1); a.Approved {
		t.Error("approved with no proposals")
	}
}
