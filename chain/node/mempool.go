package node

import (
	"fmt"
	"slices"

	"taobox/chain/types"
)

// Mempool admission limits.
const (
	// DefaultMempoolMax is the default global cap of pending transactions.
	DefaultMempoolMax = 10000
	// PerAccountMax caps the pending transactions of one signer.
	PerAccountMax = 64
)

// RejectCode classifies why a transaction was not admitted; each has its own
// reason text in RejectError.Reason.
type RejectCode uint8

const (
	RejectMalformed     RejectCode = 1 + iota // does not decode, or its call is invalid
	RejectTooLarge                            // encoding over types.MaxTxSize
	RejectBadSignature                        // not signed by its signer for this chain
	RejectExpired                             // ValidUntil is below the next block
	RejectTooFarAhead                         // ValidUntil is more than types.MaxValidityWindow ahead
	RejectNonceUsed                           // nonce below the account's next nonce
	RejectDuplicate                           // the same transaction is already pending
	RejectNonceConflict                       // another transaction with this nonce is pending
	RejectAccountFull                         // the signer has PerAccountMax pending transactions
	RejectMempoolFull                         // the mempool holds its maximum
	RejectCannotPayFee                        // the signer cannot pay the fee (first pending nonce)
	rejectEnd
)

var rejectNames = [...]string{
	RejectMalformed:     "malformed",
	RejectTooLarge:      "too_large",
	RejectBadSignature:  "bad_signature",
	RejectExpired:       "expired",
	RejectTooFarAhead:   "too_far_ahead",
	RejectNonceUsed:     "nonce_used",
	RejectDuplicate:     "duplicate",
	RejectNonceConflict: "nonce_conflict",
	RejectAccountFull:   "account_full",
	RejectMempoolFull:   "mempool_full",
	RejectCannotPayFee:  "cannot_pay_fee",
	rejectEnd:           "",
}

// String returns the code's snake_case name ("nonce_used", …).
func (c RejectCode) String() string {
	if c >= RejectMalformed && c < rejectEnd {
		return rejectNames[c]
	}
	return fmt.Sprintf("RejectCode(%d)", uint8(c))
}

// RejectError is why Submit (or Mempool.Add) refused a transaction. Reason
// is a complete sentence for users; Code classifies it for programs.
type RejectError struct {
	Code   RejectCode
	Reason string
}

func (e *RejectError) Error() string { return "transaction rejected: " + e.Reason }

func reject(code RejectCode, format string, args ...any) *RejectError {
	return &RejectError{Code: code, Reason: fmt.Sprintf(format, args...)}
}

// Mempool holds pending transactions: a queue per signer ordered by nonce,
// a global cap and a per-account cap. It is a pure data structure: it
// checks nothing that needs the state or a signature (the node does), and
// it is not safe for concurrent use (the node guards it with its lock).
//
// Selection is deterministic: the same sequence of calls gives the same
// blocks. Accounts are served round-robin in the order in which their queue
// became non-empty, so one busy account cannot crowd out the others.
type Mempool struct {
	max, perAccount int
	seq             uint64 // arrival counter
	accounts        map[types.AccountID]*accountQueue
	byHash          map[types.Hash]*poolTx
}

type accountQueue struct {
	id  types.AccountID
	seq uint64    // when the queue became non-empty
	txs []*poolTx // ascending nonce, no two with the same nonce
}

type poolTx struct {
	tx   types.Tx
	hash types.Hash
}

// NewMempool returns an empty mempool holding at most maxTxs transactions, at
// most perAccount per signer. Values below 1 are raised to 1.
func NewMempool(maxTxs, perAccount int) *Mempool {
	return &Mempool{
		max: max(maxTxs, 1), perAccount: max(perAccount, 1),
		accounts: map[types.AccountID]*accountQueue{}, byHash: map[types.Hash]*poolTx{},
	}
}

// Len returns the number of pending transactions.
func (m *Mempool) Len() int { return len(m.byHash) }

// Has reports whether the transaction with this hash is pending.
func (m *Mempool) Has(hash types.Hash) bool { _, ok := m.byHash[hash]; return ok }

// Add admits tx, whose hash (types.Tx.Hash) the caller has computed, for a
// chain whose next block is height and an account whose next nonce (in the
// committed state) is nextNonce. It first drops the account's stale entries
// (nonce below nextNonce), then refuses, in this order, a duplicate, a
// ValidUntil outside [height, height+types.MaxValidityWindow], a used
// nonce, a nonce that already has a pending transaction, a full account
// queue and a full mempool; the error is a *RejectError. Nonce gaps are
// allowed: a later nonce waits until the missing ones arrive (or expires).
// Add keeps tx by value; the caller must not modify the slices in its call
// afterwards.
func (m *Mempool) Add(tx *types.Tx, hash types.Hash, height, nextNonce uint64) error {
	if _, ok := m.byHash[hash]; ok {
		return reject(RejectDuplicate, "transaction %s is already pending", hash)
	}
	if tx.ValidUntil < height {
		return reject(RejectExpired, "expired: valid until block %d, the next block is %d; sign it again with a later valid_until", tx.ValidUntil, height)
	}
	if tx.ValidUntil > height+types.MaxValidityWindow {
		return reject(RejectTooFarAhead, "valid_until %d is more than %d blocks ahead of the next block %d", tx.ValidUntil, types.MaxValidityWindow, height)
	}
	if tx.Nonce < nextNonce {
		return reject(RejectNonceUsed, "nonce %d was already used: the account's next nonce is %d", tx.Nonce, nextNonce)
	}
	q := m.accounts[tx.Signer]
	if q != nil {
		m.dropStale(q, nextNonce)
		q = m.accounts[tx.Signer]
	}
	i := 0
	if q != nil {
		var found bool
		i, found = slices.BinarySearchFunc(q.txs, tx.Nonce, func(p *poolTx, n uint64) int { return cmpU64(p.tx.Nonce, n) })
		if found {
			return reject(RejectNonceConflict, "nonce %d already has a pending transaction (%s); wait for it to be included or to expire", tx.Nonce, q.txs[i].hash)
		}
		if len(q.txs) >= m.perAccount {
			return reject(RejectAccountFull, "the account %s already has %d pending transactions, the most one account may have; wait for some to be included", tx.Signer, len(q.txs))
		}
	}
	if len(m.byHash) >= m.max {
		return reject(RejectMempoolFull, "the mempool is full (%d transactions); try again after the next block", len(m.byHash))
	}
	p := &poolTx{tx: *tx, hash: hash}
	if q == nil {
		m.seq++
		q = &accountQueue{id: tx.Signer, seq: m.seq}
		m.accounts[tx.Signer] = q
	}
	q.txs = slices.Insert(q.txs, i, p)
	m.byHash[hash] = p
	return nil
}

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// dropStale removes q's entries with a nonce below next.
func (m *Mempool) dropStale(q *accountQueue, next uint64) {
	n := 0
	for n < len(q.txs) && q.txs[n].tx.Nonce < next {
		delete(m.byHash, q.txs[n].hash)
		n++
	}
	if n > 0 {
		q.txs = slices.Delete(q.txs, 0, n)
		if len(q.txs) == 0 {
			delete(m.accounts, q.id)
		}
	}
}

// PendingNonce returns the nonce that follows next in the account's run of
// contiguous pending transactions: what the account's next new transaction
// should use.
func (m *Mempool) PendingNonce(id types.AccountID, next uint64) uint64 {
	q := m.accounts[id]
	if q == nil {
		return next
	}
	for _, p := range q.txs {
		if p.tx.Nonce == next {
			next++
		} else if p.tx.Nonce > next {
			break
		}
	}
	return next
}

// orderedQueues returns the account queues in service order.
func (m *Mempool) orderedQueues() []*accountQueue {
	qs := make([]*accountQueue, 0, len(m.accounts))
	for _, q := range m.accounts {
		qs = append(qs, q)
	}
	slices.SortFunc(qs, func(a, b *accountQueue) int { return cmpU64(a.seq, b.seq) })
	return qs
}

// Select returns up to limit executable transactions: for each account the
// run of contiguous nonces starting at nextNonce(account), taken
// round-robin across accounts (one transaction of each account per round,
// accounts in the order their queues became non-empty). Within the result
// every account's transactions appear in nonce order, so any prefix of it
// is still executable. Select removes nothing.
func (m *Mempool) Select(nextNonce func(types.AccountID) uint64, limit int) []types.Tx {
	if limit <= 0 || len(m.byHash) == 0 {
		return nil
	}
	type run struct{ txs []*poolTx }
	var runs []run
	for _, q := range m.orderedQueues() {
		next := nextNonce(q.id)
		i, _ := slices.BinarySearchFunc(q.txs, next, func(p *poolTx, n uint64) int { return cmpU64(p.tx.Nonce, n) })
		j := i
		for j < len(q.txs) && q.txs[j].tx.Nonce == next+uint64(j-i) {
			j++
		}
		if j > i {
			runs = append(runs, run{q.txs[i:j]})
		}
	}
	out := make([]types.Tx, 0, min(limit, len(m.byHash)))
	for round := 0; len(out) < limit; round++ {
		took := false
		for _, r := range runs {
			if round < len(r.txs) {
				out = append(out, r.txs[round].tx)
				took = true
				if len(out) == limit {
					break
				}
			}
		}
		if !took {
			break
		}
	}
	return out
}

// Remove drops the transactions with these hashes; unknown hashes are
// ignored. It returns how many were removed.
func (m *Mempool) Remove(hashes ...types.Hash) int {
	removed := 0
	for _, h := range hashes {
		p, ok := m.byHash[h]
		if !ok {
			continue
		}
		delete(m.byHash, h)
		removed++
		q := m.accounts[p.tx.Signer]
		if i := slices.Index(q.txs, p); i >= 0 {
			q.txs = slices.Delete(q.txs, i, i+1)
		}
		if len(q.txs) == 0 {
			delete(m.accounts, q.id)
		}
	}
	return removed
}

// Prune drops what can never be included any more once the next block is
// height: stale transactions, whose nonce is below nextNonce(signer) (used
// by an included transaction), and expired ones, whose ValidUntil is below
// height. It returns their hashes, each list in service order.
func (m *Mempool) Prune(nextNonce func(types.AccountID) uint64, height uint64) (stale, expired []types.Hash) {
	for _, q := range m.orderedQueues() {
		next := nextNonce(q.id)
		kept := q.txs[:0]
		for _, p := range q.txs {
			switch {
			case p.tx.Nonce < next:
				stale = append(stale, p.hash)
			case p.tx.ValidUntil < height:
				expired = append(expired, p.hash)
			default:
				kept = append(kept, p)
				continue
			}
			delete(m.byHash, p.hash)
		}
		clear(q.txs[len(kept):])
		q.txs = kept
		if len(q.txs) == 0 {
			delete(m.accounts, q.id)
		}
	}
	return stale, expired
}
