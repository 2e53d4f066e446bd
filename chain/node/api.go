package node

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"taobox/chain/state"
	"taobox/chain/store"
	"taobox/chain/types"
	"taobox/chain/yuma"
)

// The local JSON API (see the package doc for the endpoints). Addresses are
// SS58 strings, hashes hex, amounts rao as JSON numbers; every error is
// {"error": "..."} with a 4xx or 5xx status.

// API limits.
const (
	maxRequestBody = 64 << 10 // bytes of a request body
	writeTimeout   = 30 * time.Second
)

// httpError is an error with its HTTP status.
type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return e.msg }

func errorf(status int, format string, args ...any) error {
	return &httpError{status: status, msg: fmt.Sprintf(format, args...)}
}

// apiFunc answers a request with a value to encode as JSON, or an error.
type apiFunc func(r *http.Request) (any, error)

func (n *Node) newServer(base context.Context) *http.Server {
	mux := http.NewServeMux()
	for pattern, f := range map[string]apiFunc{
		"GET /v1/head":               n.apiHead,
		"POST /v1/tx":                n.apiSubmit,
		"GET /v1/tx/{hash}":          n.apiTx,
		"GET /v1/account/{address}":  n.apiAccount,
		"GET /v1/subnets":            n.apiSubnets,
		"GET /v1/subnet/{netuid}":    n.apiSubnet,
		"GET /v1/metagraph/{netuid}": n.apiMetagraph,
		"GET /v1/globals":            n.apiGlobals,
		"GET /v1/proposals":          n.apiProposals,
		"GET /v1/block/{height}":     n.apiBlock,
		"GET /v1/events/{height}":    n.apiEvents,
		"GET /v1/firmware/{hash}":    n.apiFirmware,
		"POST /v1/probe":             n.apiProbe,
	} {
		mux.Handle(pattern, n.jsonHandler(f))
	}
	mux.HandleFunc("GET /v1/stream", n.apiStream)
	mux.Handle("/", n.jsonHandler(func(r *http.Request) (any, error) {
		// Every pattern above names its method, so a known path with
		// another method lands here too.
		for _, m := range []string{http.MethodGet, http.MethodPost} {
			probe := r.Clone(r.Context())
			probe.Method = m
			if _, p := mux.Handler(probe); p != "/" && p != "" {
				return nil, errorf(http.StatusMethodNotAllowed, "%s %s: method not allowed (use %s)", r.Method, r.URL.Path, m)
			}
		}
		return nil, errorf(http.StatusNotFound, "no such endpoint: %s %s", r.Method, r.URL.Path)
	}))
	return &http.Server{
		Handler:           n.recoverer(n.accessLog(limitBody(mux))),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second, // no WriteTimeout: /v1/stream is long-lived
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		BaseContext:       func(net.Listener) context.Context { return base },
		ErrorLog:          slog.NewLogLogger(n.log.Handler(), slog.LevelDebug),
	}
}

// jsonHandler runs f and writes its result or error as JSON.
func (n *Node) jsonHandler(f apiFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.NewResponseController(w).SetWriteDeadline(time.Now().Add(writeTimeout))
		v, err := f(r)
		if err != nil {
			n.writeError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, v)
	})
}

func (n *Node) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var he *httpError
	var re *RejectError
	var mbe *http.MaxBytesError
	var ut *unknownTx
	switch {
	case errors.As(err, &ut):
		writeJSON(w, http.StatusNotFound, TxStatus{Status: "unknown", Hash: ut.hash, Error: ut.msg})
	case errors.As(err, &he):
		writeJSON(w, he.status, map[string]string{"error": he.msg})
	case errors.As(err, &re):
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": re.Reason, "code": re.Code.String()})
	case errors.As(err, &mbe):
		writeJSON(w, http.StatusRequestEntityTooLarge, map[string]string{"error": fmt.Sprintf("request body over %d bytes", mbe.Limit)})
	case errors.Is(err, ErrClosed), errors.Is(err, store.ErrClosed):
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "the node is shutting down"})
	default:
		n.log.Error("API request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// recoverer turns a panic in a handler into a 500 and a log line.
func (n *Node) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				n.log.Error("API handler panicked", "method", r.Method, "path", r.URL.Path, "panic", p, "stack", string(debug.Stack()))
				writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "internal error (logged by the node)"})
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// statusWriter records the status for the access log. It passes Flush and
// the deadline setters through (Unwrap), as the stream needs them.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// accessLog logs each request at debug level.
func (n *Node) accessLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			n.log.Debug("api", "method", r.Method, "path", r.URL.Path, "status", sw.status,
				"ms", ms(time.Since(start)), "remote", r.RemoteAddr)
		}()
		next.ServeHTTP(sw, r)
	})
}

func limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxRequestBody)
		next.ServeHTTP(w, r)
	})
}

// snapshot runs f over a consistent view of the committed state.
func (n *Node) snapshot(f func(sn *store.Snapshot) (any, error)) (any, error) {
	sn, err := n.store.Snapshot()
	if err != nil {
		return nil, err
	}
	defer sn.Release()
	return f(sn)
}

func parseNetuid(s string) (types.Netuid, error) {
	v, err := strconv.ParseUint(s, 10, 16)
	if err != nil {
		return 0, errorf(http.StatusBadRequest, "netuid %q: want a number from 0 to 65535", s)
	}
	return types.Netuid(v), nil
}

func parseHeight(s string) (uint64, error) {
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, errorf(http.StatusBadRequest, "height %q: want a block number", s)
	}
	return v, nil
}

// HeadInfo is GET /v1/head.
type HeadInfo struct {
	Height    uint64     `json:"height"`
	Hash      types.Hash `json:"hash"`
	StateRoot types.Hash `json:"state_root"`
	TimeMs    uint64     `json:"time_ms"`
	ChainID   types.Hash `json:"chain_id"`
	// Finalized is the height of the last final block: the head, since a
	// node commits a block only with its BFT certificate (> 2/3 of the
	// authority stake precommitted it).
	Finalized uint64 `json:"finalized"`
	// Syncing: the node is fetching blocks it missed from its peers.
	Syncing bool `json:"syncing"`
	// Peers is how many peers the p2p layer is connected to; absent
	// when the node was given no way to count them (Config.Peers).
	Peers *int `json:"peers,omitempty"`
}

func (n *Node) apiHead(*http.Request) (any, error) {
	var peers *int
	if n.cfg.Peers != nil {
		p := n.cfg.Peers()
		peers = &p
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return HeadInfo{Height: n.head.Height, Hash: n.headID, StateRoot: n.head.StateRoot, TimeMs: n.head.TimeMs, ChainID: n.chainID,
		Finalized: n.head.Height, Syncing: n.catching.Load(), Peers: peers}, nil
}

// apiSubmit is POST /v1/tx {"tx": "<hex>"}.
func (n *Node) apiSubmit(r *http.Request) (any, error) {
	var req struct {
		Tx string `json:"tx"`
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, err
		}
		return nil, errorf(http.StatusBadRequest, `the body must be {"tx": "<hex of the encoded transaction>"}: %v`, err)
	}
	raw, err := hex.DecodeString(strings.TrimPrefix(req.Tx, "0x"))
	if err != nil {
		return nil, reject(RejectMalformed, "malformed: tx is not hex: %v", err)
	}
	if len(raw) == 0 {
		return nil, reject(RejectMalformed, "malformed: empty tx")
	}
	h, err := n.SubmitEncoded(raw)
	if err != nil {
		return nil, err
	}
	return map[string]types.Hash{"hash": h}, nil
}

// TxStatus is GET /v1/tx/{hash}.
type TxStatus struct {
	Status string     `json:"status"` // pending, included or unknown
	Hash   types.Hash `json:"hash"`
	Height *uint64    `json:"height,omitempty"`
	Index  *int       `json:"index,omitempty"`
	OK     *bool      `json:"ok,omitempty"`
	Error  string     `json:"error,omitempty"`
}

func (n *Node) apiTx(r *http.Request) (any, error) {
	h, err := types.ParseHash(r.PathValue("hash"))
	if err != nil {
		return nil, errorf(http.StatusBadRequest, "%v", err)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.pool.Has(h) {
		return TxStatus{Status: "pending", Hash: h}, nil
	}
	if loc, ok := n.index.lookup(h); ok {
		return TxStatus{Status: "included", Hash: h, Height: &loc.height, Index: &loc.index, OK: &loc.ok, Error: loc.err}, nil
	}
	msg := fmt.Sprintf("transaction %s is not pending and not in the last %d blocks", h, n.cfg.KeepBlocks)
	if reason, ok := n.index.dropReason(h); ok {
		msg = "transaction " + h.String() + " was " + reason
	}
	return nil, &unknownTx{hash: h, msg: msg}
}

// unknownTx is the 404 answer of GET /v1/tx/{hash}: {"status": "unknown",
// "error": ...}.
type unknownTx struct {
	hash types.Hash
	msg  string
}

func (e *unknownTx) Error() string { return e.msg }

// AccountInfo is GET /v1/account/{address}. PendingNonce is the nonce for
// the account's next new transaction, counting its pending ones.
type AccountInfo struct {
	Address      types.AccountID `json:"address"`
	Free         uint64          `json:"free"`
	Nonce        uint64          `json:"nonce"`
	Staked       uint64          `json:"staked"`
	PendingNonce uint64          `json:"pending_nonce"`
}

func (n *Node) apiAccount(r *http.Request) (any, error) {
	id, err := types.ParseAddress(r.PathValue("address"))
	if err != nil {
		return nil, errorf(http.StatusBadRequest, "%v", err)
	}
	a, err := state.QueryAccount(n.store, id)
	if err != nil {
		return nil, err
	}
	n.mu.Lock()
	pn := n.pool.PendingNonce(id, a.Nonce) // from the nonce read above, so pn >= a.Nonce
	n.mu.Unlock()
	return AccountInfo{Address: id, Free: a.Free, Nonce: a.Nonce, Staked: a.Staked, PendingNonce: pn}, nil
}

// SubnetInfo is one subnet of GET /v1/subnets and, with Hyperparams and
// Share, GET /v1/subnet/{netuid}.
type SubnetInfo struct {
	Netuid       types.Netuid      `json:"netuid"`
	Owner        types.AccountID   `json:"owner"`
	OwnerHotkey  types.AccountID   `json:"owner_hotkey"`
	N            uint64            `json:"n"`
	Burn         uint64            `json:"burn"`
	Pending      uint64            `json:"pending"`
	Tempo        uint64            `json:"tempo"`
	LastEpoch    uint64            `json:"last_epoch"`
	EpochIndex   uint64            `json:"epoch_index"`
	Lock         uint64            `json:"lock"`
	RegisteredAt uint64            `json:"registered_at"`
	Hyperparams  map[string]uint64 `json:"hyperparams,omitempty"`
	Share        *uint16           `json:"share,omitempty"` // of 65535
}

func subnetView(id types.Netuid, s *state.Subnet) SubnetInfo {
	return SubnetInfo{
		Netuid: id, Owner: s.Owner, OwnerHotkey: s.OwnerHotkey, N: s.N, Burn: s.Burn, Pending: s.Pending,
		Tempo: s.Hyper.Tempo, LastEpoch: s.LastEpoch, EpochIndex: s.EpochIndex, Lock: s.Lock, RegisteredAt: s.RegisteredAt,
	}
}

func (n *Node) apiSubnets(*http.Request) (any, error) {
	return n.snapshot(func(sn *store.Snapshot) (any, error) {
		ids, err := state.QuerySubnets(sn)
		if err != nil {
			return nil, err
		}
		out := make([]SubnetInfo, 0, len(ids))
		for _, id := range ids {
			s, ok, err := state.QuerySubnet(sn, id)
			if err != nil {
				return nil, err
			}
			if ok {
				out = append(out, subnetView(id, &s))
			}
		}
		return out, nil
	})
}

func (n *Node) apiSubnet(r *http.Request) (any, error) {
	id, err := parseNetuid(r.PathValue("netuid"))
	if err != nil {
		return nil, err
	}
	return n.snapshot(func(sn *store.Snapshot) (any, error) {
		s, ok, err := state.QuerySubnet(sn, id)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, errorf(http.StatusNotFound, "subnet %d does not exist", id)
		}
		return subnetFull(sn, id, &s)
	})
}

// subnetFull is GET /v1/subnet/{netuid}'s object: subnetView with the
// subnet's share and hyperparameters.
func subnetFull(sn *store.Snapshot, id types.Netuid, s *state.Subnet) (*SubnetInfo, error) {
	shares, err := state.QueryShares(sn)
	if err != nil {
		return nil, err
	}
	v := subnetView(id, s)
	var share uint16
	for _, e := range shares {
		if e.Netuid == id {
			share = e.Share
		}
	}
	v.Share = &share
	v.Hyperparams = map[string]uint64{}
	for p, name := range state.HyperparamNames() {
		if val, ok := state.HyperparamValue(&s.Hyper, p); ok {
			v.Hyperparams[name] = val
		}
	}
	return &v, nil
}

// NeuronInfo is one uid of GET /v1/metagraph/{netuid}.
type NeuronInfo struct {
	UID             uint16          `json:"uid"`
	Hotkey          types.AccountID `json:"hotkey"`
	Coldkey         types.AccountID `json:"coldkey"`
	Stake           uint64          `json:"stake"`
	Take            uint16          `json:"take"`
	Active          bool            `json:"active"`
	ValidatorPermit bool            `json:"validator_permit"`
	ValidatorTrust  uint16          `json:"validator_trust"`
	Consensus       uint16          `json:"consensus"`
	Incentive       uint16          `json:"incentive"`
	Dividends       uint16          `json:"dividends"`
	Emission        uint64          `json:"emission"`
	StakeWeight     uint16          `json:"stake_weight"`
	LastUpdate      uint64          `json:"last_update"`
	RegisteredAt    uint64          `json:"registered_at"`
	Axon            AxonInfo        `json:"axon"`
	Weights         [][2]uint16     `json:"weights"`
	Bonds           [][2]uint16     `json:"bonds"`
}

// AxonInfo is a neuron's published endpoint.
type AxonInfo struct {
	Host   string          `json:"host"`
	Port   uint16          `json:"port"`
	TLSKey types.AccountID `json:"tls_key"`
	Block  uint64          `json:"block"`
}

// MetagraphInfo is GET /v1/metagraph/{netuid}. These wire types are
// exported so that clients (the CLI) decode exactly what the server writes.
type MetagraphInfo struct {
	Netuid types.Netuid `json:"netuid"`
	Block  uint64       `json:"block"`
	// Subnet is GET /v1/subnet/{netuid} at the same block: tempo, burn,
	// epoch, share, hyperparameters (what the metagraph table's header
	// shows). Nil from a node older than this field.
	Subnet  *SubnetInfo  `json:"subnet,omitempty"`
	Neurons []NeuronInfo `json:"neurons"`
}

func pairs(es []yuma.Entry) [][2]uint16 {
	out := make([][2]uint16, len(es))
	for i, e := range es {
		out[i] = [2]uint16{e.UID, e.Value}
	}
	return out
}

func (n *Node) apiMetagraph(r *http.Request) (any, error) {
	id, err := parseNetuid(r.PathValue("netuid"))
	if err != nil {
		return nil, err
	}
	return n.snapshot(func(sn *store.Snapshot) (any, error) {
		s, ok, err := state.QuerySubnet(sn, id)
		if err != nil {
			return nil, err
		} else if !ok {
			return nil, errorf(http.StatusNotFound, "subnet %d does not exist", id)
		}
		sub, err := subnetFull(sn, id, &s)
		if err != nil {
			return nil, err
		}
		m, err := state.QueryMetagraph(sn, id)
		if err != nil {
			return nil, err
		}
		block, _, _ := sn.Head()
		out := MetagraphInfo{Netuid: id, Block: block, Subnet: sub, Neurons: make([]NeuronInfo, len(m.Neurons))}
		for i, nr := range m.Neurons {
			out.Neurons[i] = NeuronInfo{
				UID: nr.UID, Hotkey: nr.Hotkey, Coldkey: nr.Coldkey, Stake: nr.Stake, Take: nr.Take, Active: nr.Active,
				ValidatorPermit: nr.Permit, ValidatorTrust: nr.ValidatorTrust, Consensus: nr.Consensus,
				Incentive: nr.Incentive, Dividends: nr.Dividends, Emission: nr.Emission, StakeWeight: nr.StakeWeight,
				LastUpdate: nr.LastUpdate, RegisteredAt: nr.RegisteredAt,
				Axon:    AxonInfo{Host: nr.Axon.Host, Port: nr.Axon.Port, TLSKey: nr.Axon.TLSKey, Block: nr.Axon.Block},
				Weights: pairs(nr.Weights), Bonds: pairs(nr.Bonds),
			}
		}
		return out, nil
	})
}

// GlobalsInfo is GET /v1/globals.
type GlobalsInfo struct {
	Issuance              uint64             `json:"issuance"`
	Burned                uint64             `json:"burned"`
	Locked                uint64             `json:"locked"`
	TotalStake            uint64             `json:"total_stake"`
	LastLock              uint64             `json:"last_lock"`
	NetworkLastRegistered uint64             `json:"network_last_registered"`
	NextProposal          uint64             `json:"next_proposal"`
	Params                state.GlobalParams `json:"params"`
}

func (n *Node) apiGlobals(*http.Request) (any, error) {
	g, err := state.QueryGlobals(n.store)
	if err != nil {
		return nil, err
	}
	return GlobalsInfo{
		Issuance: g.Issuance, Burned: g.Burned, Locked: g.Locked, TotalStake: g.TotalStake, LastLock: g.LastLock,
		NetworkLastRegistered: g.NetworkLastRegistered, NextProposal: g.NextProposal, Params: g.Params,
	}, nil
}

// ProposalInfo is a governance proposal in GET /v1/proposals.
type ProposalInfo struct {
	ID       uint64          `json:"id"`
	Proposer types.AccountID `json:"proposer"`
	Status   string          `json:"status"` // open, passed or rejected
	Action   string          `json:"action"` // set_param or approve_firmware
	// set_param: the parameter's name and its proposed value (rao for
	// amounts).
	Param string `json:"param,omitempty"`
	Value uint64 `json:"value"`
	// approve_firmware: the release's hash and version.
	FirmwareHash    *types.Hash `json:"firmware_hash,omitempty"`
	FirmwareVersion string      `json:"firmware_version,omitempty"`
	Description     string      `json:"description"`
	Start           uint64      `json:"start"` // the block it was proposed in
	End             uint64      `json:"end"`   // the last block of its voting period
	Aye             uint64      `json:"aye"`   // stake voting for (rao)
	Nay             uint64      `json:"nay"`   // stake voting against (rao)
}

// maxProposalsListed caps GET /v1/proposals (the newest first).
const maxProposalsListed = 100

// apiProposals is GET /v1/proposals: the newest proposals first, at most
// maxProposalsListed (?limit=N for fewer).
func (n *Node) apiProposals(r *http.Request) (any, error) {
	limit := uint64(maxProposalsListed)
	if v := r.URL.Query().Get("limit"); v != "" {
		l, err := strconv.ParseUint(v, 10, 64)
		if err != nil || l == 0 || l > maxProposalsListed {
			return nil, errorf(http.StatusBadRequest, "limit %q: want a number from 1 to %d", v, maxProposalsListed)
		}
		limit = l
	}
	return n.snapshot(func(sn *store.Snapshot) (any, error) {
		g, err := state.QueryGlobals(sn)
		if err != nil {
			return nil, err
		}
		out := []ProposalInfo{}
		for id := g.NextProposal; id > 0 && uint64(len(out)) < limit; id-- {
			p, ok, err := state.QueryProposal(sn, id-1)
			if err != nil {
				return nil, err
			}
			if ok {
				out = append(out, proposalView(&p))
			}
		}
		return out, nil
	})
}

func proposalView(p *state.Proposal) ProposalInfo {
	v := ProposalInfo{ID: p.ID, Proposer: p.Proposer, Action: p.Action.Kind.String(), Description: p.Description,
		Start: p.Start, End: p.End, Aye: p.Aye, Nay: p.Nay}
	switch p.Status {
	case state.ProposalOpen:
		v.Status = "open"
	case state.ProposalPassed:
		v.Status = "passed"
	case state.ProposalRejected:
		v.Status = "rejected"
	default:
		v.Status = fmt.Sprintf("status(%d)", p.Status)
	}
	switch p.Action.Kind {
	case types.ActionSetParam:
		v.Param, v.Value = p.Action.Param.String(), p.Action.Value
	case types.ActionApproveFirmware:
		h := p.Action.FirmwareHash
		v.FirmwareHash, v.FirmwareVersion = &h, p.Action.FirmwareVersion
	}
	return v
}

// txJSON is a transaction of a block or of the stream. OK and Error say
// how its call went (from the block's events).
type txJSON struct {
	Hash       types.Hash      `json:"hash"`
	Signer     types.AccountID `json:"signer"`
	Nonce      uint64          `json:"nonce"`
	ValidUntil uint64          `json:"valid_until"`
	Kind       string          `json:"kind"`
	Call       types.Call      `json:"call"`
	OK         bool            `json:"ok"`
	Error      string          `json:"error,omitempty"`
}

func txViews(txs []types.Tx, evs []types.Event) []txJSON {
	failed := map[int32]string{}
	for _, ev := range evs {
		if ev.Kind == types.EvTxFailed {
			failed[ev.TxIndex] = ev.Error
		}
	}
	out := make([]txJSON, len(txs))
	for i := range txs {
		tx := &txs[i]
		reason, bad := failed[int32(i)]
		out[i] = txJSON{Hash: tx.Hash(), Signer: tx.Signer, Nonce: tx.Nonce, ValidUntil: tx.ValidUntil,
			Kind: tx.Call.Kind().String(), Call: tx.Call, OK: !bad, Error: reason}
	}
	return out
}

// eventJSON is one event. Account, Other and Error appear when set.
type eventJSON struct {
	Kind    string           `json:"kind"`
	TxIndex int32            `json:"tx_index"` // -1: block-level
	Netuid  types.Netuid     `json:"netuid"`
	Account *types.AccountID `json:"account,omitempty"`
	Other   *types.AccountID `json:"other,omitempty"`
	UID     uint16           `json:"uid"`
	Amount  uint64           `json:"amount"`
	Value   uint64           `json:"value"`
	Error   string           `json:"error,omitempty"`
}

func eventViews(evs []types.Event) []eventJSON {
	out := make([]eventJSON, len(evs))
	for i := range evs {
		ev := &evs[i]
		out[i] = eventJSON{Kind: snake(ev.Kind.String()), TxIndex: ev.TxIndex, Netuid: ev.Netuid, UID: ev.UID,
			Amount: ev.Amount, Value: ev.Value, Error: ev.Error}
		if !ev.Account.IsZero() {
			out[i].Account = &ev.Account
		}
		if !ev.Other.IsZero() {
			out[i].Other = &ev.Other
		}
	}
	return out
}

// snake turns "TxApplied" into "tx_applied".
func snake(s string) string {
	var b strings.Builder
	for i, r := range s {
		if r >= 'A' && r <= 'Z' {
			if i > 0 {
				b.WriteByte('_')
			}
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}

// blockJSON is GET /v1/block/{height}.
type blockJSON struct {
	Height      uint64          `json:"height"`
	Hash        types.Hash      `json:"hash"`
	ChainID     types.Hash      `json:"chain_id"`
	Parent      types.Hash      `json:"parent"`
	TimeMs      uint64          `json:"time_ms"`
	TxRoot      types.Hash      `json:"tx_root"`
	StateRoot   types.Hash      `json:"state_root"`
	EventsRoot  types.Hash      `json:"events_root"`
	ValSet      types.Hash      `json:"val_set_hash"`
	NextValSet  types.Hash      `json:"next_val_set_hash"`
	LastCommit  types.Hash      `json:"last_commit_hash"`
	Proposer    types.AccountID `json:"proposer"`
	ProposerSig types.Signature `json:"proposer_sig"`
	Txs         []txJSON        `json:"txs"`
}

func (n *Node) storedBlock(r *http.Request) (*types.Block, []types.Event, error) {
	h, err := parseHeight(r.PathValue("height"))
	if err != nil {
		return nil, nil, err
	}
	blk, evs, ok, err := n.readBlock(h)
	if err != nil {
		return nil, nil, err
	}
	if !ok {
		head, _ := n.Head()
		if h > head {
			return nil, nil, errorf(http.StatusNotFound, "block %d does not exist yet (the head is %d)", h, head)
		}
		return nil, nil, errorf(http.StatusNotFound, "block %d is pruned (this node keeps blocks %d to %d)", h, n.store.Base(), head)
	}
	return blk, evs, nil
}

func (n *Node) apiBlock(r *http.Request) (any, error) {
	blk, evs, err := n.storedBlock(r)
	if err != nil {
		return nil, err
	}
	h := &blk.Header
	return blockJSON{
		Height: h.Height, Hash: h.Hash(), ChainID: h.ChainID, Parent: h.Parent, TimeMs: h.TimeMs, TxRoot: h.TxRoot,
		StateRoot: h.StateRoot, EventsRoot: h.EventsRoot, ValSet: h.ValSetHash, NextValSet: h.NextValSetHash,
		LastCommit: h.LastCommitHash, Proposer: h.Proposer, ProposerSig: h.ProposerSig,
		Txs: txViews(blk.Txs, evs),
	}, nil
}

func (n *Node) apiEvents(r *http.Request) (any, error) {
	_, evs, err := n.storedBlock(r)
	if err != nil {
		return nil, err
	}
	return eventViews(evs), nil
}

// streamJSON is one line of GET /v1/stream.
type streamJSON struct {
	Height    uint64      `json:"height"`
	Hash      types.Hash  `json:"hash"`
	TimeMs    uint64      `json:"time_ms"`
	StateRoot types.Hash  `json:"state_root"`
	Txs       []txJSON    `json:"txs"`
	Events    []eventJSON `json:"events"`
}

// apiStream is GET /v1/stream: one JSON object per new block, one per line,
// flushed, until the client goes away or the server stops.
func (n *Node) apiStream(w http.ResponseWriter, r *http.Request) {
	blocks, cancel := n.Subscribe()
	defer cancel()
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	if err := rc.Flush(); err != nil {
		return
	}
	enc := json.NewEncoder(w)
	for {
		select {
		case <-r.Context().Done():
			return
		case b, ok := <-blocks:
			if !ok {
				return // the node closed
			}
			rc.SetWriteDeadline(time.Now().Add(writeTimeout))
			line := streamJSON{Height: b.Height, Hash: b.Hash, TimeMs: b.Header.TimeMs, StateRoot: b.Header.StateRoot,
				Txs: txViews(b.Txs, b.Events), Events: eventViews(b.Events)}
			if err := enc.Encode(line); err != nil {
				return
			}
			if err := rc.Flush(); err != nil {
				return
			}
		}
	}
}
