package dashboard

import (
	"encoding/json"
	"fmt"
	"time"

	"taobox/chain/node"
	"taobox/chain/types"
)

// MaxHeadBytes caps the /v1/head answer DecodeHead accepts.
const MaxHeadBytes = 64 << 10

// Head is GET /v1/head as this dashboard reads it: node.HeadInfo's fields
// plus the optional ones a node may report (absent on nodes that do not):
// the finalized height ("finalized" as a number or as {"height": N}, or
// "finalized_height"), the number of peers, and sync progress.
type Head struct {
	Height    uint64     `json:"height"`
	Hash      types.Hash `json:"hash"`
	StateRoot types.Hash `json:"state_root"`
	TimeMs    uint64     `json:"time_ms"`
	ChainID   types.Hash `json:"chain_id"`

	Finalized       json.RawMessage `json:"finalized,omitempty"`
	FinalizedHeight *uint64         `json:"finalized_height,omitempty"`
	Peers           *int            `json:"peers,omitempty"`
	Syncing         *bool           `json:"syncing,omitempty"`
	SyncTarget      *uint64         `json:"sync_target,omitempty"`
}

// DecodeHead decodes a /v1/head answer of at most MaxHeadBytes.
func DecodeHead(data []byte) (Head, error) {
	var h Head
	if len(data) > MaxHeadBytes {
		return h, fmt.Errorf("dashboard: head answer of %d bytes is over the %d-byte cap", len(data), MaxHeadBytes)
	}
	if err := json.Unmarshal(data, &h); err != nil {
		return Head{}, fmt.Errorf("dashboard: the node's /v1/head is not what this taobox expects: %v", err)
	}
	return h, nil
}

// Finality returns the finalized height when the node reports one.
func (h *Head) Finality() (uint64, bool) {
	if h.FinalizedHeight != nil {
		return *h.FinalizedHeight, true
	}
	if len(h.Finalized) == 0 || string(h.Finalized) == "null" {
		return 0, false
	}
	var n uint64
	if json.Unmarshal(h.Finalized, &n) == nil {
		return n, true
	}
	var o struct {
		Height *uint64 `json:"height"`
	}
	if json.Unmarshal(h.Finalized, &o) == nil && o.Height != nil {
		return *o.Height, true
	}
	return 0, false
}

// Account is one key the operator calls "ours": its uids are marked in the
// metagraph and get the per-uid panels.
type Account struct {
	Name    string // "wallet/hotkey" or "" for a bare address
	Address types.AccountID
}

// Role is one role's endpoint (node, miner, validator) and what it said.
type Role struct {
	Name    string  // "node", "miner", "validator"
	URL     string  // the base URL given; "" when not configured
	Health  *Health // nil when /healthz was not answered
	Metrics Metrics // nil when /metrics was not answered
	Err     string  // why neither answered; "" when one did
}

// Probe is the outcome of one reachability check of an advertised axon.
type Probe struct {
	UID       uint16
	Addr      string // host:port as advertised
	Reachable bool
	Private   bool          // the host is loopback or private: nobody outside can reach it
	RTT       time.Duration // the QUIC handshake time, when reachable
	Reason    string        // why not reachable, what to do
	At        time.Time     // when the probe ran

	// Peer is the connect-back check that a peer of the node made (the
	// node's POST /v1/probe, docs/p2p.md "ReqProbe"): the only check
	// that proves the endpoint is open from outside. Nil when not asked;
	// then PeerErr says why the node could not be asked ("" when the
	// check was not run at all). Peer.Verdict "no-peers" is a state, not
	// a failure: the node has nobody to ask.
	Peer    *node.ProbeReport
	PeerErr string
}

// Snapshot is everything one dashboard frame shows, read at Taken. A field
// that could not be read is nil or empty and the matching *Err says why.
type Snapshot struct {
	Taken   time.Time // wall clock at the read; ages are measured from it
	NodeURL string

	Head    *Head
	HeadErr string

	Subnets   []node.SubnetInfo   // every subnet, as GET /v1/subnets
	Netuid    int                 // the subnet shown; -1 when none
	Subnet    *node.SubnetInfo    // GET /v1/subnet/{netuid}, with hyperparams
	Metagraph *node.MetagraphInfo // GET /v1/metagraph/{netuid}
	SubnetErr string

	Roles  []Role
	Probes []Probe // one per our uid with a served axon, when probed
}
