package node

import (
	"math"

	"taobox/chain/types"
)

// maxIndexedTxs caps the transactions the in-memory index holds; past it the
// oldest heights are forgotten first (7200 full blocks would otherwise hold
// millions of entries).
const maxIndexedTxs = 1 << 20

// maxDropped caps the remembered reasons of dropped transactions.
const maxDropped = 4096

// txLoc is where a committed transaction is and how its call went.
type txLoc struct {
	height uint64
	index  int
	ok     bool
	err    string // the EvTxFailed reason when !ok
}

// txIndex maps the hashes of the transactions of the last keep blocks to
// their location, and remembers why recently dropped transactions left the
// mempool. It is not safe for concurrent use (the node's lock guards it).
type txIndex struct {
	keep     uint64
	byHash   map[types.Hash]txLoc
	byHeight map[uint64][]types.Hash
	lowest   uint64 // lowest height in byHeight; MaxUint64 when empty
	floor    uint64 // heights below it are forgotten

	dropped      map[types.Hash]string
	droppedOrder []types.Hash // FIFO of dropped's keys
}

func newTxIndex(keep uint64) *txIndex {
	return &txIndex{
		keep: keep, byHash: map[types.Hash]txLoc{}, byHeight: map[uint64][]types.Hash{},
		lowest: math.MaxUint64, dropped: map[types.Hash]string{},
	}
}

// addBlock indexes the transactions of block height, given its events (for
// the failures), and forgets what fell out of the window.
func (x *txIndex) addBlock(height uint64, hashes []types.Hash, events []types.Event) {
	if height < x.floor || len(hashes) == 0 {
		x.advance(height)
		return
	}
	failed := map[int32]string{}
	for _, ev := range events {
		if ev.Kind == types.EvTxFailed {
			failed[ev.TxIndex] = ev.Error
		}
	}
	for i, h := range hashes {
		if _, ok := x.byHash[h]; ok {
			continue // the rebuild found a block that was indexed live
		}
		reason, bad := failed[int32(i)]
		x.byHash[h] = txLoc{height: height, index: i, ok: !bad, err: reason}
		delete(x.dropped, h)
	}
	x.byHeight[height] = append(x.byHeight[height], hashes...)
	x.lowest = min(x.lowest, height)
	x.advance(height)
}

// advance forgets the heights below head+1-keep, then the oldest heights
// while over maxIndexedTxs.
func (x *txIndex) advance(head uint64) {
	if head+1 > x.keep {
		x.floor = max(x.floor, head+1-x.keep)
	}
	for len(x.byHeight) > 0 && (x.lowest < x.floor || len(x.byHash) > maxIndexedTxs) {
		if x.lowest >= x.floor {
			x.floor = x.lowest + 1
		}
		for _, h := range x.byHeight[x.lowest] {
			delete(x.byHash, h)
		}
		delete(x.byHeight, x.lowest)
		x.lowest++
		for len(x.byHeight) > 0 {
			if _, ok := x.byHeight[x.lowest]; ok {
				break
			}
			x.lowest++
		}
	}
	if len(x.byHeight) == 0 {
		x.lowest = math.MaxUint64
	}
}

func (x *txIndex) lookup(h types.Hash) (txLoc, bool) {
	loc, ok := x.byHash[h]
	return loc, ok
}

// drop remembers why a transaction left the mempool without being included.
func (x *txIndex) drop(h types.Hash, reason string) {
	if _, ok := x.dropped[h]; !ok {
		x.droppedOrder = append(x.droppedOrder, h)
	}
	x.dropped[h] = reason
	for len(x.droppedOrder) > maxDropped {
		delete(x.dropped, x.droppedOrder[0])
		x.droppedOrder = x.droppedOrder[1:]
	}
}

func (x *txIndex) dropReason(h types.Hash) (string, bool) {
	r, ok := x.dropped[h]
	return r, ok
}
