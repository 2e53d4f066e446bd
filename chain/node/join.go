package node

import (
	"context"
	"errors"
	"fmt"

	"taobox/chain/state"
	"taobox/chain/types"
)

// SyncPoint is a block a new node may start from instead of block 0: an
// authority epoch boundary whose header is proven, from the genesis, by the
// chain of handoff certificates (VerifyEpochProof). A snapshot of the state
// at Height, checked against Header.StateRoot, makes a node that opens on
// it a full participant from Height+1 on.
type SyncPoint struct {
	Height  uint64
	Hash    types.Hash
	Header  types.Header
	Encoded []byte // the header as encoded on the wire
	Cert    []byte // the certificate that finalized it
	NextSet []byte // the authority set of the heights after it (consensus.EncodeValidators)
}

// ProveEpochs asks peers through net for the epoch handoff proof from
// epoch 1 on and verifies it from the genesis authority set, page by page
// (each page may come from another peer; every page is checked against the
// set the previous one proved). It returns the proven boundaries in height
// order, the newest last; none when the chain has not finished its first
// authority epoch. A page that does not verify is an error wrapping
// ErrMisbehaving: the caller should drop that peer and try again. net's
// Request must wrap ErrNotFound when the peers hold no such proof.
func ProveEpochs(ctx context.Context, net Network, g *state.Genesis) ([]SyncPoint, error) {
	chainID, epochBlocks := g.ID(), g.EpochBlocks()
	set := toValidators(state.GenesisSet(g))
	var out []SyncPoint
	for from := uint64(1); ; {
		raw, err := net.Request(ctx, types.ReqEpochProof, RangeRequest{From: from, Count: maxEpochFragments}.Encode())
		if errors.Is(err, ErrNotFound) {
			return out, nil // no boundary from this epoch on yet
		}
		if err != nil {
			return out, fmt.Errorf("node: asking peers for the epoch proof from epoch %d: %w", from, err)
		}
		fs, err := DecodeEpochProof(raw)
		if err != nil {
			return out, misbehaving("epoch proof from epoch %d: %v", from, err)
		}
		if len(fs) == 0 {
			return out, nil
		}
		next, err := VerifyEpochProof(chainID, epochBlocks, from, set, fs)
		if err != nil {
			return out, misbehaving("%v", err)
		}
		for _, f := range fs {
			h, _ := types.DecodeHeader(f.Header) // verified above
			out = append(out, SyncPoint{Height: h.Height, Hash: h.Hash(), Header: *h, Encoded: f.Header, Cert: f.Cert, NextSet: f.NextSet})
		}
		set = next
		from += uint64(len(fs))
		if len(fs) < maxEpochFragments {
			return out, nil
		}
	}
}
