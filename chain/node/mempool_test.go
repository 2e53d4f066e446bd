package node

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"taobox/chain/types"
)

// ptx is an unsigned pool transaction of account i (the mempool checks no
// signatures); extra makes otherwise equal transactions differ.
func ptx(i int, nonce, validUntil uint64, extra uint64) (*types.Tx, types.Hash) {
	tx := &types.Tx{Signer: id(i), Nonce: nonce, ValidUntil: validUntil, Call: types.Transfer{To: id(99), Amount: 1 + extra}}
	return tx, tx.Hash()
}

func TestMempoolAddRejections(t *testing.T) {
	const height = 100
	type add struct {
		acct       int
		nonce, vu  uint64
		extra      uint64
		next       uint64
		wantCode   RejectCode // 0: admitted
		wantReason string
	}
	for _, tc := range []struct {
		name     string
		max, per int
		setup    []add
		try      add
	}{
		{name: "admitted", max: 10, per: 4, try: add{acct: 1, nonce: 5, vu: 100, next: 5}},
		{name: "gap admitted", max: 10, per: 4, try: add{acct: 1, nonce: 9, vu: 100, next: 5}},
		{name: "duplicate", max: 10, per: 4, setup: []add{{acct: 1, nonce: 5, vu: 110, next: 5}},
			try: add{acct: 1, nonce: 5, vu: 110, next: 5, wantCode: RejectDuplicate, wantReason: "already pending"}},
		{name: "expired", max: 10, per: 4,
			try: add{acct: 1, nonce: 5, vu: 99, next: 5, wantCode: RejectExpired, wantReason: "expired: valid until block 99"}},
		{name: "last valid block", max: 10, per: 4, try: add{acct: 1, nonce: 5, vu: 100, next: 5}},
		{name: "window edge", max: 10, per: 4, try: add{acct: 1, nonce: 5, vu: 100 + types.MaxValidityWindow, next: 5}},
		{name: "too far ahead", max: 10, per: 4,
			try: add{acct: 1, nonce: 5, vu: 101 + types.MaxValidityWindow, next: 5, wantCode: RejectTooFarAhead, wantReason: "more than 256 blocks ahead"}},
		{name: "nonce used", max: 10, per: 4,
			try: add{acct: 1, nonce: 4, vu: 110, next: 5, wantCode: RejectNonceUsed, wantReason: "nonce 4 was already used: the account's next nonce is 5"}},
		{name: "nonce conflict", max: 10, per: 4, setup: []add{{acct: 1, nonce: 5, vu: 110, next: 5}},
			try: add{acct: 1, nonce: 5, vu: 110, extra: 1, next: 5, wantCode: RejectNonceConflict, wantReason: "nonce 5 already has a pending transaction"}},
		{name: "account full", max: 10, per: 2, setup: []add{{acct: 1, nonce: 5, vu: 110, next: 5}, {acct: 1, nonce: 6, vu: 110, next: 5}},
			try: add{acct: 1, nonce: 7, vu: 110, next: 5, wantCode: RejectAccountFull, wantReason: "already has 2 pending transactions"}},
		{name: "stale entries make room", max: 10, per: 2, setup: []add{{acct: 1, nonce: 5, vu: 110, next: 5}, {acct: 1, nonce: 6, vu: 110, next: 5}},
			try: add{acct: 1, nonce: 7, vu: 110, next: 6}},
		{name: "mempool full", max: 2, per: 4, setup: []add{{acct: 1, nonce: 0, vu: 110}, {acct: 2, nonce: 0, vu: 110}},
			try: add{acct: 3, nonce: 0, vu: 110, wantCode: RejectMempoolFull, wantReason: "the mempool is full (2 transactions)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := NewMempool(tc.max, tc.per)
			for _, a := range tc.setup {
				tx, h := ptx(a.acct, a.nonce, a.vu, a.extra)
				if err := m.Add(tx, h, height, a.next); err != nil {
					t.Fatalf("setup: %v", err)
				}
			}
			a := tc.try
			tx, h := ptx(a.acct, a.nonce, a.vu, a.extra)
			err := m.Add(tx, h, height, a.next)
			if a.wantCode == 0 {
				if err != nil {
					t.Fatalf("rejected: %v", err)
				}
				if !m.Has(h) {
					t.Fatal("admitted but not pending")
				}
				return
			}
			var re *RejectError
			if !errors.As(err, &re) {
				t.Fatalf("got %v, want a *RejectError", err)
			}
			if re.Code != a.wantCode || !strings.Contains(re.Reason, a.wantReason) {
				t.Fatalf("got %s %q, want %s containing %q", re.Code, re.Reason, a.wantCode, a.wantReason)
			}
		})
	}
}

// TestRejectCodesDistinct checks that every code has its own name.
func TestRejectCodesDistinct(t *testing.T) {
	seen := map[string]bool{}
	for c := RejectMalformed; c < rejectEnd; c++ {
		if s := c.String(); s == "" || seen[s] {
			t.Fatalf("code %d has name %q (empty or repeated)", c, s)
		}
		seen[c.String()] = true
	}
}

// key of a selected transaction: account number and nonce.
type an struct {
	acct  int
	nonce uint64
}

func selected(txs []types.Tx) []an {
	out := make([]an, len(txs))
	for i, tx := range txs {
		for a := range 10 {
			if tx.Signer == id(a) {
				out[i] = an{a, tx.Nonce}
			}
		}
	}
	return out
}

func TestMempoolSelect(t *testing.T) {
	next := map[int]uint64{1: 0, 2: 10, 3: 0}
	nextNonce := func(a types.AccountID) uint64 {
		for i, n := range next {
			if id(i) == a {
				return n
			}
		}
		return 0
	}
	for _, tc := range []struct {
		name  string
		adds  []an // in arrival order
		limit int
		want  []an
	}{
		{name: "empty", limit: 10},
		{name: "one account in nonce order", adds: []an{{1, 2}, {1, 0}, {1, 1}}, limit: 10, want: []an{{1, 0}, {1, 1}, {1, 2}}},
		{name: "gap stops the run", adds: []an{{1, 0}, {1, 1}, {1, 3}}, limit: 10, want: []an{{1, 0}, {1, 1}}},
		{name: "missing first nonce", adds: []an{{1, 1}, {1, 2}}, limit: 10},
		{name: "round robin in arrival order", adds: []an{{3, 0}, {3, 1}, {3, 2}, {1, 0}, {2, 10}, {2, 11}}, limit: 10,
			want: []an{{3, 0}, {1, 0}, {2, 10}, {3, 1}, {2, 11}, {3, 2}}},
		{name: "limit keeps fairness", adds: []an{{3, 0}, {3, 1}, {3, 2}, {1, 0}, {2, 10}}, limit: 3,
			want: []an{{3, 0}, {1, 0}, {2, 10}}},
		{name: "limit zero", adds: []an{{1, 0}}, limit: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := NewMempool(100, 10)
			for _, a := range tc.adds {
				tx, h := ptx(a.acct, a.nonce, 50, 0)
				if err := m.Add(tx, h, 1, next[a.acct]); err != nil {
					t.Fatal(err)
				}
			}
			got := selected(m.Select(nextNonce, tc.limit))
			if !slices.Equal(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			if m.Len() != len(tc.adds) {
				t.Fatal("Select removed transactions")
			}
		})
	}
}

func TestMempoolPruneRemove(t *testing.T) {
	m := NewMempool(100, 10)
	var hashes []types.Hash
	for _, a := range []struct {
		acct      int
		nonce, vu uint64
	}{{1, 0, 50}, {1, 1, 50}, {1, 2, 5}, {2, 0, 50}, {2, 1, 50}} {
		tx, h := ptx(a.acct, a.nonce, a.vu, 0)
		if err := m.Add(tx, h, 1, 0); err != nil {
			t.Fatal(err)
		}
		hashes = append(hashes, h)
	}
	if got := m.PendingNonce(id(1), 0); got != 3 {
		t.Fatalf("pending nonce %d, want 3", got)
	}
	if got := m.PendingNonce(id(3), 7); got != 7 {
		t.Fatalf("pending nonce of an idle account %d, want 7", got)
	}
	// Account 1 used nonce 0; block 6 is past nonce 2's validity.
	nextNonce := func(a types.AccountID) uint64 {
		if a == id(1) {
			return 1
		}
		return 0
	}
	stale, expired := m.Prune(nextNonce, 6)
	if !slices.Equal(stale, []types.Hash{hashes[0]}) || !slices.Equal(expired, []types.Hash{hashes[2]}) {
		t.Fatalf("pruned %v and %v, want the used nonce and the expired one", stale, expired)
	}
	if m.Len() != 3 || !m.Has(hashes[1]) || !m.Has(hashes[3]) {
		t.Fatal("prune removed the wrong transactions")
	}
	if got := m.Remove(hashes[1], hashes[1], types.Hash{1}); got != 1 {
		t.Fatalf("Remove counted %d", got)
	}
	if m.Len() != 2 || len(m.accounts) != 1 {
		t.Fatalf("after Remove: %d txs, %d accounts", m.Len(), len(m.accounts))
	}
	m.Remove(hashes[3], hashes[4])
	if m.Len() != 0 || len(m.accounts) != 0 || len(m.byHash) != 0 {
		t.Fatal("not empty after removing everything")
	}
}

func TestTxIndexWindow(t *testing.T) {
	x := newTxIndex(3)
	h := func(i byte) types.Hash { return types.Hash{i} }
	x.addBlock(1, []types.Hash{h(1)}, nil)
	x.addBlock(2, []types.Hash{h(2), h(3)}, []types.Event{{Kind: types.EvTxFailed, TxIndex: 1, Error: "boom"}})
	if loc, ok := x.lookup(h(3)); !ok || loc.ok || loc.err != "boom" || loc.height != 2 || loc.index != 1 {
		t.Fatalf("lookup: %+v %v", loc, ok)
	}
	x.addBlock(3, nil, nil)
	if _, ok := x.lookup(h(1)); !ok {
		t.Fatal("block 1 forgotten too early")
	}
	x.addBlock(4, nil, nil) // keeps 2..4
	if _, ok := x.lookup(h(1)); ok {
		t.Fatal("block 1 still indexed outside the window")
	}
	if _, ok := x.lookup(h(2)); !ok {
		t.Fatal("block 2 forgotten")
	}
	x.addBlock(1, []types.Hash{h(9)}, nil) // a late rebuild below the window
	if _, ok := x.lookup(h(9)); ok {
		t.Fatal("indexed a block below the window")
	}
	x.addBlock(10, nil, nil)
	if len(x.byHash) != 0 || len(x.byHeight) != 0 {
		t.Fatalf("index not empty: %d %d", len(x.byHash), len(x.byHeight))
	}
	for i := range maxDropped + 10 {
		x.drop(types.Hash{byte(i), byte(i >> 8)}, "gone")
	}
	if len(x.dropped) != maxDropped {
		t.Fatalf("%d dropped reasons kept", len(x.dropped))
	}
}
