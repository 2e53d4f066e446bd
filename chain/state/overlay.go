// Package state is the chain's state machine: accounts and balances,
// subnets, neurons, stake and delegation, weights, emission and governance.
// It is a pure, deterministic function of (state, block): ApplyBlock reads the
// previous state through a Reader and returns the state changes and events
// of the block, without writing anything. The node persists the changes in
// one atomic batch (chain/store) — the core returns work instead of doing
// I/O, as etcd raft's Ready does — and BFT consensus can apply a proposed
// block to a discarded overlay before it is final.
//
// docs/chain.md lists where the rules follow subtensor and where they are
// simplified.
package state

import (
	"bytes"
	"slices"
)

// Reader reads the committed state. chain/store's Store and Snapshot
// implement it, as does MemState for tests.
type Reader interface {
	Get(key []byte) ([]byte, bool, error)
}

// Change is one state write of a block; a nil Value deletes the key.
type Change struct {
	Key, Value []byte
}

// overlay is a copy-on-write view over a Reader: writes stay in memory, and
// a child overlay (one per transaction) can be merged or dropped, which is
// how a failed transaction loses its effects but keeps its fee.
type overlay struct {
	base    Reader
	parent  *overlay
	writes  map[string][]byte // nil value: deleted
	readErr error
}

func newOverlay(base Reader) *overlay {
	return &overlay{base: base, writes: map[string][]byte{}}
}

// child returns an overlay whose writes reach o only on merge.
func (o *overlay) child() *overlay {
	return &overlay{base: o.base, parent: o, writes: map[string][]byte{}}
}

// merge moves the child's writes into its parent.
func (o *overlay) merge() {
	for k, v := range o.writes {
		o.parent.writes[k] = v
	}
	if o.readErr != nil && o.parent.readErr == nil {
		o.parent.readErr = o.readErr
	}
}

// get returns the current value of key. A storage error is remembered and
// reported by the block application; the read returns "absent".
func (o *overlay) get(key []byte) ([]byte, bool) {
	for l := o; l != nil; l = l.parent {
		if v, ok := l.writes[string(key)]; ok {
			return v, v != nil
		}
	}
	v, ok, err := o.base.Get(key)
	if err != nil {
		o.root().readErr = err
		return nil, false
	}
	return v, ok
}

func (o *overlay) root() *overlay {
	for o.parent != nil {
		o = o.parent
	}
	return o
}

func (o *overlay) set(key, value []byte) {
	if value == nil {
		value = []byte{}
	}
	o.writes[string(key)] = value
}

func (o *overlay) del(key []byte) { o.writes[string(key)] = nil }

// changes returns the writes sorted by key: the deterministic changeset.
func (o *overlay) changes() []Change {
	out := make([]Change, 0, len(o.writes))
	for k, v := range o.writes {
		out = append(out, Change{Key: []byte(k), Value: v})
	}
	slices.SortFunc(out, func(a, b Change) int { return bytes.Compare(a.Key, b.Key) })
	return out
}

// MemState is an in-memory Reader with Apply, for tests, the devnet's
// replay checks and tools.
type MemState map[string][]byte

// Get implements Reader.
func (m MemState) Get(key []byte) ([]byte, bool, error) {
	v, ok := m[string(key)]
	return v, ok, nil
}

// Apply writes changes into m.
func (m MemState) Apply(changes []Change) {
	for _, c := range changes {
		if c.Value == nil {
			delete(m, string(c.Key))
		} else {
			m[string(c.Key)] = c.Value
		}
	}
}
