package node

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"taobox/chain/state"
	"taobox/chain/store"
	"taobox/chain/types"
)

// The node-level crash test: a child process runs a real node (goleveldb,
// the state machine, signed transactions of many kinds, epochs) producing
// blocks as fast as it can; the parent kills it with SIGKILL at random
// moments, then checks that the store is whole and that replaying every
// stored block from genesis through state.ApplyBlock reproduces each
// header's state root and the store's root, and restarts the child, which
// must resume at head+1.

const crashDirEnv = "TAOBOX_NODE_CRASH_DIR"

func crashKey(i int) (types.AccountID, ed25519.PrivateKey) {
	seed := make([]byte, ed25519.SeedSize)
	binary.BigEndian.PutUint64(seed, uint64(i)+1000)
	priv := ed25519.NewKeyFromSeed(seed)
	return types.AccountIDFromPrivateKey(priv), priv
}

func crashGenesis() *state.Genesis {
	g := &state.Genesis{ChainName: "crash", Params: state.DefaultParams(), SubnetDefaults: state.DefaultSubnetHyperparams()}
	g.Params.NetworkMinLock = 5 * types.RaoPerTAO
	g.Params.NetworkRateLimit = 1
	g.Params.RootTempo = 4
	g.SubnetDefaults.Tempo = 10
	g.SubnetDefaults.WeightsRateLimit = 1
	for i := range 12 {
		id, _ := crashKey(i)
		g.Balances = append(g.Balances, state.GenesisBalance{Account: id, Free: 10_000 * types.RaoPerTAO})
	}
	return g
}

func crashConfig(dir string) Config {
	_, authority := crashKey(99)
	return Config{DataDir: dir, Genesis: crashGenesis(), Authority: authority, BlockTime: time.Second,
		KeepBlocks: store.KeepAll, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
}

// crashTxs returns the transactions the child submits before block h:
// transfers, subnet and neuron registrations, stake, root weights and
// weights, chosen deterministically from h.
func crashTxs(n *Node, h uint64) []types.Tx {
	r := rand.New(rand.NewPCG(h, 7))
	head, _ := n.Head()
	var out []types.Tx
	for range 3 + r.IntN(6) {
		i := r.IntN(12)
		id, priv := crashKey(i)
		hot, _ := crashKey(20 + r.IntN(12))
		var c types.Call
		switch r.IntN(7) {
		case 0:
			to, _ := crashKey(r.IntN(14))
			c = types.Transfer{To: to, Amount: uint64(1+r.IntN(1000)) * 1_000_000}
		case 1:
			c = types.RegisterNetwork{Hotkey: hot}
		case 2:
			c = types.BurnedRegister{Netuid: types.Netuid(1 + r.IntN(3)), Hotkey: hot}
		case 3:
			c = types.AddStake{Hotkey: hot, Amount: uint64(1+r.IntN(100)) * types.RaoPerTAO}
		case 4:
			c = types.SetRootWeights{Hotkey: hot, Netuids: []uint16{1, 2}, Weights: []uint16{uint16(r.IntN(100)), 50}}
		case 5:
			id, priv = hot, crashHotPriv(hot)
			c = types.SetWeights{Netuid: types.Netuid(1 + r.IntN(2)), UIDs: []uint16{0, 1, 2}, Weights: []uint16{1, uint16(r.IntN(9)), 3}}
		default:
			c = types.RemoveStake{Hotkey: hot, Amount: types.RaoPerTAO}
		}
		nonce, err := n.PendingNonce(id)
		if err != nil {
			continue
		}
		tx := types.Tx{Nonce: nonce, ValidUntil: head + 20, Call: c}
		tx.Sign(priv, n.ChainID())
		out = append(out, tx)
	}
	return out
}

func crashHotPriv(hot types.AccountID) ed25519.PrivateKey {
	for i := 20; i < 32; i++ {
		if id, priv := crashKey(i); id == hot {
			return priv
		}
	}
	panic("unknown hotkey")
}

// TestNodeCrashChild is the child's body; it runs only with crashDirEnv set.
func TestNodeCrashChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("child of TestNodeCrashKill9")
	}
	n, err := Open(crashConfig(dir))
	if err != nil {
		fmt.Printf("open failed: %v\n", err)
		os.Exit(3)
	}
	for {
		h, _ := n.Head()
		for _, tx := range crashTxs(n, h+1) {
			n.Submit(&tx) // rejections are part of the workload
		}
		fmt.Printf("committing %d\n", h+1)
		if _, err := n.ProduceBlock(); err != nil {
			fmt.Printf("produce failed: %v\n", err)
			os.Exit(4)
		}
		fmt.Printf("committed %d\n", h+1)
		time.Sleep(2 * time.Millisecond) // pace the chain so the replays stay small
	}
}

func TestNodeCrashKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	kills := 6
	if os.Getenv("TAOBOX_LONG") != "" {
		kills = 50
	}
	dir := t.TempDir()
	r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	midCommit := 0
	var lastHead uint64
	rp := newReplayer(t)
	for k := range kills {
		cmd := exec.Command(os.Args[0], "-test.run=^TestNodeCrashChild$", "-test.v=false")
		cmd.Env = append(os.Environ(), crashDirEnv+"="+dir)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(100+r.IntN(700)) * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		lastCommitted, lastStarted := parseCrashLog(out.String())
		if strings.Contains(out.String(), "failed") {
			t.Fatalf("kill %d: the child failed:\n%s", k, tail(out.String()))
		}
		if lastStarted > lastCommitted {
			midCommit++
		}
		head := rp.verify(t, dir)
		if head < lastCommitted || head > lastStarted && lastStarted != 0 {
			t.Fatalf("kill %d: head %d outside [%d, %d]", k, head, lastCommitted, lastStarted)
		}
		if k > 0 && head < lastHead {
			t.Fatalf("kill %d: head went back from %d to %d", k, lastHead, head)
		}
		lastHead = head
	}
	if lastHead < 10 {
		t.Fatalf("only %d blocks were produced", lastHead)
	}
	// The workload must have reached the interesting parts of the state.
	subnets, _ := state.QuerySubnets(rp.mem)
	g, _ := state.QueryGlobals(rp.mem)
	if len(subnets) == 0 || g.TotalStake == 0 || g.Burned == 0 {
		t.Fatalf("the replayed chain is too trivial: %d subnets, stake %d, burned %d", len(subnets), g.TotalStake, g.Burned)
	}
	t.Logf("%d kills, %d during a commit, %d blocks replayed and matched", kills, midCommit, lastHead)
}

func parseCrashLog(s string) (committed, started uint64) {
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		var h uint64
		if _, err := fmt.Sscanf(sc.Text(), "committed %d", &h); err == nil {
			committed = h
		} else if _, err := fmt.Sscanf(sc.Text(), "committing %d", &h); err == nil {
			started = h
		}
	}
	return committed, started
}

func tail(s string) string {
	if len(s) > 2000 {
		return s[len(s)-2000:]
	}
	return s
}

// replayer replays the stored chain from genesis through state.ApplyBlock.
// Committed blocks never change and heads never go back, so each check
// continues from the height the previous one reached.
type replayer struct {
	mem    state.MemState
	env    state.Env
	height uint64
}

func newReplayer(t *testing.T) *replayer {
	g := crashGenesis()
	changes, err := g.Changes()
	if err != nil {
		t.Fatal(err)
	}
	r := &replayer{mem: state.MemState{}, env: state.Env{ChainID: g.ID()}}
	r.mem.Apply(changes)
	return r
}

// verify opens the store with a full rehash, replays the blocks it has not
// replayed yet, compares the replayed state root with the header's at
// sampled heights and with the store's at the head, and returns the head.
func (r *replayer) verify(t *testing.T, dir string) uint64 {
	t.Helper()
	st, err := store.Open(dir, store.Options{FullCheck: true, KeepBlocks: store.KeepAll})
	if err != nil {
		t.Fatalf("reopen after kill: %v", err)
	}
	defer st.Close()
	head, _, ok := st.Head()
	if !ok {
		return 0 // killed before genesis was committed
	}
	for h := r.height + 1; h <= head; h++ {
		body, ok, err := st.Body(h)
		if err != nil || !ok {
			t.Fatalf("block %d body missing (%v)", h, err)
		}
		blk, err := types.DecodeBlock(body)
		if err != nil {
			t.Fatalf("block %d: %v", h, err)
		}
		res, err := state.ApplyBlock(context.Background(), r.mem, r.env, h, blk.Txs)
		if err != nil {
			t.Fatalf("replay of block %d: %v", h, err)
		}
		r.mem.Apply(res.Changes)
		if h%16 == 0 || h == head {
			if root := memRoot(r.mem, st.Buckets()); root != blk.Header.StateRoot {
				t.Fatalf("block %d: replayed state root %s, header says %s", h, root, blk.Header.StateRoot)
			}
		}
	}
	r.height = head
	if root := memRoot(r.mem, st.Buckets()); root != st.StateRoot() {
		t.Fatalf("head %d: replayed root %s, store root %s", head, root, st.StateRoot())
	}
	return head
}

// memRoot computes the store's state root over an in-memory state.
func memRoot(m state.MemState, buckets int) types.Hash {
	byBucket := make([][]store.KV, buckets)
	for k, v := range m {
		b := store.BucketOf([]byte(k), buckets)
		byBucket[b] = append(byBucket[b], store.KV{Key: []byte(k), Value: v})
	}
	leaves := make([]types.Hash, buckets)
	for i, kvs := range byBucket {
		if len(kvs) == 0 {
			leaves[i] = store.EmptyBucketHash
			continue
		}
		slices.SortFunc(kvs, func(a, b store.KV) int { return bytes.Compare(a.Key, b.Key) })
		leaves[i] = store.HashBucket(kvs)
	}
	return store.MerkleRoot(leaves)
}
