package gateway

import (
	"net"
	"slices"
	"strconv"

	"taobox/chain/state"
	"taobox/chain/types"
	"taobox/validator"
)

// Candidate is a miner the gateway may send a request to.
type Candidate struct {
	UID    uint16
	Hotkey types.AccountID
	Addr   string          // host:port of its task endpoint
	TLSKey types.AccountID // the key it registered with serve (zero: its hotkey)
	Score  float64         // the validator's moving average
}

// Rank returns the miners of mg to try, best first: neurons that serve an
// endpoint, are not self, and have a positive score in scores for the
// same hotkey (a uid whose hotkey changed has not been scored yet), by
// score descending, then uid ascending. Miners the validator has not
// scored, or scored 0 (failed verification or never answered), are not
// routed to: a caller gets only answers from miners that have passed.
func Rank(mg *state.Metagraph, scores []validator.Record, self types.AccountID) []Candidate {
	byUID := make(map[uint16]validator.Record, len(scores))
	for _, r := range scores {
		byUID[r.UID] = r
	}
	var out []Candidate
	for i := range mg.Neurons {
		n := &mg.Neurons[i]
		r, ok := byUID[n.UID]
		if !ok || r.Hotkey != n.Hotkey || !(r.Score > 0) || n.Hotkey == self || n.Axon.Port == 0 || n.Axon.Host == "" {
			continue
		}
		out = append(out, Candidate{UID: n.UID, Hotkey: n.Hotkey, Addr: net.JoinHostPort(n.Axon.Host, strconv.Itoa(int(n.Axon.Port))), TLSKey: n.Axon.TLSKey, Score: r.Score})
	}
	slices.SortStableFunc(out, func(a, b Candidate) int {
		switch {
		case a.Score > b.Score:
			return -1
		case a.Score < b.Score:
			return 1
		}
		return int(a.UID) - int(b.UID)
	})
	return out
}
