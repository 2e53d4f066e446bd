package main

import (
	"bufio"
	"context"
	"crypto/ed25519"
	crand "crypto/rand"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"taobox/chain/consensus"
	"taobox/chain/p2p"
	"taobox/chain/state"
	"taobox/chain/types"
	"taobox/internal/udpproxy"
	"taobox/task"
	"taobox/wallet"
)

// Process-level fault tests of the chain network (issue 7, spec
// chain-and-sync.md §6 "Fault testing on one machine"): validator and
// follower processes on loopback QUIC, links cut by user-space UDP proxies
// (internal/udpproxy; this kernel has no netem), followers killed with
// SIGKILL mid-sync. Bounded in `go test`; TAOBOX_LONG=1 runs the full
// counts.

const faultBlockTime = 250 * time.Millisecond

// proxyIP is the loopback address the proxies use on both sides. The
// nodes listen on 127.0.0.1, so the listen addresses they learn from
// proxied connections (the connection's IP + the port of the Hello) are
// 127.0.0.2:<node port>, where nothing listens: peer exchange cannot open
// a direct connection around a cut link.
const proxyIP = "127.0.0.2"

// faultNet is a network of validator processes; with proxies, node i
// reaches node j only through links[i][j].
type faultNet struct {
	t      *testing.T
	dir    string
	gen    string
	common []string
	vals   []*procNode
	links  [][]*udpproxy.Proxy // nil without proxies
}

// netOptions shapes a faultNet.
type netOptions struct {
	validators int
	epoch      int  // authority epoch, blocks (snapshots are taken at its boundaries)
	accounts   int  // extra funded accounts in the genesis, to make the state larger
	proxied    bool // route every peer link through its own proxy
}

func newFaultNet(t *testing.T, o netOptions) *faultNet {
	t.Helper()
	dir := t.TempDir()
	wallets := filepath.Join(dir, "wallets")
	gen := filepath.Join(dir, "genesis.json")
	args := []string{"genesis", "--devnet", "--wallets", wallets, "--authority-epoch", strconv.Itoa(o.epoch), "--out", gen}
	var keyFiles []string
	for i := range o.validators {
		name := fmt.Sprintf("v%d", i)
		w, err := wallet.Create(wallets, name)
		if err != nil {
			t.Fatal(err)
		}
		keyFiles = append(keyFiles, w.ColdkeyPath())
		args = append(args, "--authority", name)
	}
	if r := taobox(t, nil, args...); r.code != 0 {
		t.Fatalf("genesis: exit %d: %s", r.code, r.stderr)
	}
	if o.accounts > 0 {
		addAccounts(t, gen, o.accounts)
	}
	n := &faultNet{t: t, dir: dir, gen: gen,
		common: []string{"--genesis", gen, "--block-time", faultBlockTime.String(), "--log-level", "info", "--log-format", "json"}}
	// The validators start the chain together from the genesis: --sync
	// blocks, because a validator on an empty dir otherwise first asks
	// its peers for epoch proofs, and a peer still starting answers
	// "not found" or "send hello first", which ends the process (see
	// docs/fault-tests.md, "Found").
	for i := range o.validators {
		n.vals = append(n.vals, newProcNode(t, dir, fmt.Sprintf("v%d", i), append([]string{"--validator", keyFiles[i], "--sync", "blocks"}, n.common...)...))
	}
	if o.proxied {
		n.links = make([][]*udpproxy.Proxy, o.validators)
		for i := range n.vals {
			n.links[i] = make([]*udpproxy.Proxy, o.validators)
			for j, to := range n.vals {
				if i == j {
					continue
				}
				p, err := udpproxy.New(udpproxy.Config{Listen: proxyIP + ":0", Upstream: to.p2p, UpstreamBind: proxyIP, Seed: uint64(i*16 + j)})
				if err != nil {
					t.Skipf("no proxy on %s (needs the whole 127.0.0.0/8 on lo): %v", proxyIP, err)
				}
				t.Cleanup(func() { p.Close() })
				n.links[i][j] = p
			}
		}
	}
	for i, v := range n.vals {
		var peers []string
		for j, o := range n.vals {
			switch {
			case i == j:
			case n.links != nil:
				peers = append(peers, n.links[i][j].Addr().String())
			default:
				peers = append(peers, o.p2p)
			}
		}
		v.args = append(v.args, "--peers", strings.Join(peers, ","))
		v.start()
	}
	return n
}

// addAccounts funds count more accounts (ids derived from their index) in
// the genesis file, so that the state, and its snapshot, is larger.
func addAccounts(t *testing.T, path string, count int) {
	t.Helper()
	g, err := readGenesis(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := range count {
		var id types.AccountID
		copy(id[:], "taobox fault test account")
		binary.BigEndian.PutUint64(id[24:], uint64(i))
		g.Balances = append(g.Balances, state.GenesisBalance{Account: id, Free: uint64(1+i%1000) * types.RaoPerTAO / 1000})
	}
	b, err := json.Marshal(g)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := readGenesis(path); err != nil {
		t.Fatalf("the enlarged genesis does not read back: %v", err)
	}
}

// cut blocks (or restores) both directions between nodes i and j.
func (n *faultNet) cut(i, j int, on bool) {
	n.links[i][j].SetBlocked(on)
	n.links[j][i].SetBlocked(on)
}

// partition cuts every link between the two sides.
func (n *faultNet) partition(a, b []int) {
	for _, i := range a {
		for _, j := range b {
			n.cut(i, j, true)
		}
	}
}

// heal restores every link.
func (n *faultNet) heal() {
	for i := range n.vals {
		for j := range n.vals {
			if i != j {
				n.links[i][j].SetBlocked(false)
			}
		}
	}
}

// heads returns every node's head height (a node that does not answer
// fails the test).
func heads(t *testing.T, nodes []*procNode) []uint64 {
	t.Helper()
	out := make([]uint64, len(nodes))
	for i, v := range nodes {
		h, ok := v.head()
		for try := 0; !ok && try < 50; try++ {
			time.Sleep(100 * time.Millisecond)
			h, ok = v.head()
		}
		if !ok {
			t.Fatalf("%s does not answer on its API\n%s", v.name, v.logTail())
		}
		out[i] = h.Height
	}
	return out
}

// agree checks that every node has the same hash and state root as
// nodes[0] at each height in [from, to].
func agree(t *testing.T, nodes []*procNode, from, to uint64) {
	t.Helper()
	for h := from; h <= to; h++ {
		wh, wr := nodes[0].blockAt(h)
		for _, v := range nodes[1:] {
			if gh, gr := v.blockAt(h); gh != wh || gr != wr {
				t.Fatalf("block %d: %s has %s (root %s), %s has %s (root %s): a fork", h, v.name, gh, gr, nodes[0].name, wh, wr)
			}
		}
	}
}

// TestNetworkPartitions runs four validator processes whose every peer
// link goes through its own UDP proxy, and cuts links: a 2|2 partition
// finalizes nothing new on either side (at most the block whose
// precommits were already in flight) and forks nothing; healed, finality
// resumes and all four agree at every height. A 3|1 partition: the three
// keep finalizing, the one does not; healed, it catches up to the same
// hashes and state roots.
func TestNetworkPartitions(t *testing.T) {
	if testing.Short() {
		t.Skip("starts four node processes")
	}
	n := newFaultNet(t, netOptions{validators: 4, epoch: 5, proxied: true})
	for _, v := range n.vals {
		v.waitHeight(4, 90*time.Second)
	}
	rounds, long := 1, os.Getenv("TAOBOX_LONG") == "1"
	if long {
		rounds = 3
	}
	for r := range rounds {
		// 2|2: more than 2/3 of the stake is needed, each side has 1/2.
		n.partition([]int{0, 1}, []int{2, 3})
		// No node can pass the highest head at the cut by more than one
		// block (precommits already in flight): the next needs the
		// prevotes of three validators that have committed that one.
		base := slices.Max(heads(t, n.vals))
		looks := 3 // each 8 block times
		if long && r == 0 {
			// 40 s: past the 30 s idle timeout, the cut connections
			// die and the dialler tries every address it learned.
			looks = 20
		}
		for range looks {
			time.Sleep(8 * faultBlockTime)
			hs := heads(t, n.vals)
			if m := slices.Max(hs); m > base+1 {
				t.Fatalf("round %d: during a 2|2 partition from height %d the heads are %v: a side finalized without 2/3 of the stake (or a link bypassed the proxies)", r, base, hs)
			}
		}
		// No fork: the two sides agree at every height both have.
		hs := heads(t, n.vals)
		for _, a := range []int{0, 1} {
			for _, b := range []int{2, 3} {
				agree(t, []*procNode{n.vals[a], n.vals[b]}, 1, min(hs[a], hs[b]))
			}
		}
		n.heal()
		for _, v := range n.vals {
			v.waitHeight(base+4, 120*time.Second)
		}
		hs = heads(t, n.vals)
		agree(t, n.vals, 1, slices.Min(hs))
		t.Logf("round %d: 2|2 held at height %d; healed, all at ≥ %d", r, base, slices.Min(hs))

		// 3|1: the three hold 3/4 of the stake.
		lone := 3 - r%4
		var three []int
		for i := range 4 {
			if i != lone {
				three = append(three, i)
			}
		}
		n.partition(three, []int{lone})
		base = slices.Max(heads(t, n.vals))
		for _, i := range three {
			n.vals[i].waitHeight(base+5, 120*time.Second)
		}
		if h := heads(t, n.vals[lone:lone+1])[0]; h > base+1 {
			t.Fatalf("round %d: the isolated %s finalized up to %d during a 3|1 partition from height %d", r, n.vals[lone].name, h, base)
		}
		n.heal()
		tip := heads(t, n.vals[three[0]:three[0]+1])[0]
		n.vals[lone].waitHeight(tip+1, 120*time.Second)
		hs = heads(t, n.vals)
		agree(t, n.vals, 1, slices.Min(hs))
		t.Logf("round %d: 3|1 (%s alone) from height %d; healed, it caught up to %d", r, n.vals[lone].name, base, tip+1)
	}
	for _, v := range n.vals {
		v.stop()
	}
	checkLogs(t, n.vals)
}

// checkLogs fails the test if a node logged a double sign or a panic.
func checkLogs(t *testing.T, nodes []*procNode) {
	t.Helper()
	for _, v := range nodes {
		lg := strings.ToLower(v.log())
		for _, bad := range []string{"equivocation", "double sign", "panic:"} {
			if strings.Contains(lg, bad) {
				t.Errorf("%s logged %q:\n%s", v.name, bad, v.logTail())
			}
		}
	}
}

// logLine is one JSON log line of a node (--log-format json).
type logLine map[string]any

func (l logLine) msg() string { s, _ := l["msg"].(string); return s }

func (l logLine) num(key string) (int, bool) {
	f, ok := l[key].(float64)
	return int(f), ok
}

// logLines parses the JSON lines of b (other lines are skipped).
func logLines(b []byte) []logLine {
	var out []logLine
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var l logLine
		if json.Unmarshal(sc.Bytes(), &l) == nil {
			out = append(out, l)
		}
	}
	return out
}

// syncRun summarizes the log of one run of a syncing follower.
type syncRun struct {
	resumedDone   int    // chunks_done of "resuming the snapshot sync" (-1: not resumed)
	resumedHeight int    // its height
	missing       int    // "missing" of the snapshot sync line (-1: none)
	chunks        int    // the snapshot's chunk count (0: unknown)
	height        int    // the snapshot's height (0: unknown)
	done          int    // the most chunks reported done
	imported      bool   // "sync: snapshot imported"
	phase         string // what the run was doing when it ended
}

func parseSyncRun(b []byte) syncRun {
	r := syncRun{resumedDone: -1, missing: -1, phase: "start"}
	for _, l := range logLines(b) {
		switch m := l.msg(); {
		case strings.HasPrefix(m, "resuming the snapshot sync"):
			r.resumedDone, _ = l.num("chunks_done")
			r.resumedHeight, _ = l.num("height")
			r.height, r.done = r.resumedHeight, r.resumedDone
			r.phase = "resume"
		case m == "sync: proving the authority handoffs from the genesis":
			r.phase = "prove"
		case m == "sync: authority handoffs proven":
			r.phase = "manifest"
		case m == "snapshot sync":
			r.missing, _ = l.num("missing")
			r.chunks, _ = l.num("chunks")
			r.height, _ = l.num("height")
			r.phase = "chunks"
		case m == "sync: snapshot":
			if s, ok := l["chunks"].(string); ok {
				var d, n int
				if _, err := fmt.Sscanf(s, "%d/%d", &d, &n); err == nil && d > r.done {
					r.done = d
				}
			}
		case m == "sync: snapshot imported":
			r.imported, r.phase = true, "blocks"
		case m == "node open" && !r.imported:
			r.phase = "following"
		case strings.Contains(m, "replaying blocks from the genesis"):
			r.phase = "replay"
		}
	}
	return r
}

// TestFollowerKillResume starts a follower on an empty dir against four
// validators with a state of many accounts, reaching them over slow lossy
// links (proxies adding delay and drops, so that the snapshot download
// takes a while), SIGKILLs it after a random 0–2 s (in the handoff proofs,
// the manifest, the chunk download, the block catch-up or later; every
// second kill at a random moment of the first second after the chunk
// download began), restarts it on the
// same dir, again and again: each restart resumes the same snapshot where
// the last one stopped (no chunk imported before is asked for again), and
// at the end the follower is at the tip with the validators' hashes and
// state roots. Under TAOBOX_LONG=1 it does so for ten followers, 50 kills
// in all. A last follower with --sync blocks replays from the genesis to
// the same state.
func TestFollowerKillResume(t *testing.T) {
	if testing.Short() {
		t.Skip("starts six node processes")
	}
	// A follower proves the newest epoch boundary and syncs its snapshot;
	// the validators keep the snapshots of the last two boundaries, so
	// the epoch is long enough for a follower killed five times to still
	// find its snapshot.
	followers, killsEach, accounts, epoch := 1, 5, 60000, 40
	if os.Getenv("TAOBOX_LONG") == "1" {
		followers, epoch = 10, 80
	}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("TAOBOX_FAULT_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("TAOBOX_FAULT_SEED=%q: want a number", s)
		}
		seed = v
	}
	t.Logf("seed %d (TAOBOX_FAULT_SEED=%d reproduces the kill delays)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 0))

	n := newFaultNet(t, netOptions{validators: 4, epoch: epoch, accounts: accounts})
	for _, v := range n.vals {
		v.waitHeight(uint64(epoch)+1, 120*time.Second)
	}
	// A snapshot of the first boundary exists once v0 logged it.
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(n.vals[0].log(), `"msg":"snapshot taken"`) {
		if time.Now().After(deadline) {
			t.Fatalf("v0 took no snapshot:\n%s", n.vals[0].logTail())
		}
		time.Sleep(100 * time.Millisecond)
	}

	// Followers reach the validators through slow links (100 ms each
	// way), so that the snapshot download takes a while. The proxies sit on proxyIP, so peer exchange offers
	// no direct way around them.
	var slow []string
	for i, v := range n.vals {
		p, err := udpproxy.New(udpproxy.Config{Listen: proxyIP + ":0", Upstream: v.p2p, UpstreamBind: proxyIP, Seed: seed + uint64(i)})
		if err != nil {
			t.Skipf("no proxy on %s (needs the whole 127.0.0.0/8 on lo): %v", proxyIP, err)
		}
		t.Cleanup(func() { p.Close() })
		for _, d := range []udpproxy.Direction{udpproxy.Forward, udpproxy.Back} {
			p.SetDelay(d, 100*time.Millisecond)
		}
		slow = append(slow, p.Addr().String())
	}
	phases := map[string]int{}
	var synced []*procNode
	for fi := range followers {
		f := newProcNode(t, n.dir, fmt.Sprintf("follower%d", fi), append(n.common, "--peers", strings.Join(slow, ","))...)
		var prev syncRun
		for k := range killsEach {
			off := logSize(f.logPath)
			f.start()
			if k%2 == 1 {
				// Aim at the chunk download: a random moment after it
				// began (or after the node opened, once synced).
				waitLog(f.logPath, off, []string{`"msg":"snapshot sync"`, `"msg":"node open"`}, 60*time.Second)
				time.Sleep(time.Duration(rng.Int64N(int64(time.Second))))
			} else {
				time.Sleep(time.Duration(rng.Int64N(int64(2 * time.Second))))
			}
			f.kill()
			run := parseSyncRun(readFrom(t, f.logPath, off))
			phases[run.phase]++
			t.Logf("%s run %d killed in %s: resumed with %d chunks done, asked for %d of %d, %d done at the kill",
				f.name, k, run.phase, run.resumedDone, run.missing, run.chunks, run.done)
			checkResume(t, k, prev, run, f)
			if run.height != 0 {
				prev = run
			}
		}
		off := logSize(f.logPath)
		f.start()
		tip := heads(t, n.vals[:1])[0]
		f.waitHeight(tip+2, 180*time.Second)
		checkResume(t, killsEach, prev, parseSyncRun(readFrom(t, f.logPath, off)), f)
		if snapshotHeight(f) == 0 || strings.Contains(f.log(), "genesis committed") {
			t.Errorf("%s did not finish a snapshot sync (it replayed blocks from the genesis):\n%s", f.name, f.logTail())
		}
		synced = append(synced, f)
	}
	t.Logf("%d kills; where they landed: %v (start: before the sync began, prove: epoch handoff proofs, manifest: asking for the snapshot manifest, chunks: snapshot chunk download, resume: a resumed import, blocks: after the import, following: a restart with a chain)",
		followers*killsEach, phases)

	// --sync blocks: replays every block from the genesis.
	var peers []string
	for _, v := range n.vals {
		peers = append(peers, v.p2p)
	}
	// It prunes as it goes (--keep-blocks 8) and is killed a few times
	// mid-replay, so kills land in block import and pruning too.
	const replayerKeep = 8
	fb := newProcNode(t, n.dir, "replayer", append(n.common, "--sync", "blocks", "--keep-blocks", strconv.Itoa(replayerKeep), "--peers", strings.Join(peers, ","))...)
	replayKills := 3
	if os.Getenv("TAOBOX_LONG") != "" {
		replayKills = 10
	}
	for range replayKills {
		fb.start()
		time.Sleep(200*time.Millisecond + time.Duration(rng.Int64N(int64(800*time.Millisecond))))
		hd, _ := fb.head() // 0 while it has not opened its API yet
		fb.kill()
		t.Logf("replayer killed at height %d (or just after)", hd.Height)
	}
	fb.start()
	tip := heads(t, n.vals[:1])[0]
	fb.waitHeight(tip+1, 180*time.Second)
	if strings.Contains(fb.log(), "snapshot imported") {
		t.Errorf("--sync blocks imported a snapshot:\n%s", fb.logTail())
	}

	// Everything each follower holds (from its snapshot on) and the
	// replayer's unpruned window match the validators (a block's hash
	// commits to its parent's, so equal recent hashes mean equal chains).
	all := append(append(append([]*procNode{}, n.vals...), synced...), fb)
	top := slices.Min(heads(t, all))
	agree(t, n.vals, 1, top)
	// Two blocks only, just below the replayer's head as read now: it
	// keeps 8 and moves on while we look (on a loaded machine the heads
	// above can take long enough for top to be pruned already).
	hr := heads(t, []*procNode{fb})[0]
	agree(t, []*procNode{n.vals[0], fb}, hr-2, hr-1)
	for _, f := range synced {
		from := uint64(1)
		if sh := snapshotHeight(f); sh > 0 {
			from = sh + 1
		}
		agree(t, []*procNode{n.vals[0], f}, from, top)
		t.Logf("%s matches the validators from %d to %d", f.name, from, top)
	}
	t.Logf("the replayer matches from %d to %d", top-1, top)
	for _, v := range all {
		v.stop()
	}
	checkLogs(t, all)
}

// checkResume checks run k of the follower against the run before it: a
// resumed snapshot sync starts from at least as many chunks as the last
// run reported imported, and asks only for the chunks not imported.
func checkResume(t *testing.T, k int, prev, run syncRun, f *procNode) {
	t.Helper()
	if run.resumedDone >= 0 && prev.height != 0 && run.resumedHeight == prev.height && run.resumedDone < prev.done {
		t.Errorf("run %d resumed the snapshot of height %d with %d chunks done, but the run before had imported %d: finished chunks are fetched again\n%s",
			k, run.resumedHeight, run.resumedDone, prev.done, f.logTail())
	}
	if run.resumedDone >= 0 && run.missing >= 0 && run.chunks > 0 && run.missing != run.chunks-run.resumedDone {
		t.Errorf("run %d resumed with %d of %d chunks done but asks for %d: finished chunks are fetched again\n%s",
			k, run.resumedDone, run.chunks, run.missing, f.logTail())
	}
}

// snapshotHeight is the height of the snapshot the follower synced, or 0
// if it synced none. The target of its last "snapshot sync" line counts
// when a "node open" line follows it: a kill may land after the import
// committed and before "sync: snapshot imported" is logged.
func snapshotHeight(p *procNode) uint64 {
	var target uint64
	for _, l := range logLines([]byte(p.log())) {
		switch l.msg() {
		case "snapshot sync":
			if h, ok := l.num("height"); ok {
				target = uint64(h)
			}
		case "node open":
			if h, _ := l.num("height"); target > 0 && uint64(h) >= target {
				return target
			}
		}
	}
	return 0
}

// waitLog waits until the log at path, from offset off, holds one of
// subs, or until d has passed.
func waitLog(path string, off int64, subs []string, d time.Duration) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(path); err == nil && off <= int64(len(b)) {
			for _, s := range subs {
				if strings.Contains(string(b[off:]), s) {
					return
				}
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func logSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

func readFrom(t *testing.T, path string, off int64) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if off > int64(len(b)) {
		return nil
	}
	return b[off:]
}

// fakePeerHandler is the Handler of a Byzantine peer in the test process:
// it serves nothing and passes on the proposals it hears.
type fakePeerHandler struct{ proposals chan consensus.Proposal }

func (f fakePeerHandler) Gossip(_ p2p.PeerID, t types.MsgType, payload []byte) error {
	if t == types.MsgProposal {
		if ev, err := consensus.DecodeMessage(payload); err == nil {
			if p, ok := ev.(consensus.Proposal); ok {
				select {
				case f.proposals <- p:
				default:
				}
			}
		}
	}
	return nil
}

func (fakePeerHandler) Serve(context.Context, p2p.PeerID, types.MsgType, []byte) ([]byte, error) {
	return nil, p2p.ErrNotFound
}

func (fakePeerHandler) Status() p2p.Status { return p2p.Status{} }

// fakePeer starts a chain/p2p Host with a fresh key on chainID that dials
// target, and waits until the connection is ready.
func fakePeer(t *testing.T, chainID types.Hash, target string) (*p2p.Host, p2p.PeerID, fakePeerHandler) {
	t.Helper()
	_, key, err := types.GenerateKey(crand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	hd := fakePeerHandler{proposals: make(chan consensus.Proposal, 16)}
	h, err := p2p.New(p2p.Config{Key: key, ChainID: chainID, Listen: "127.0.0.1:0", Bootstrap: []string{target},
		Logger: slog.New(slog.DiscardHandler)}, hd)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.Start(ctx)
	t.Cleanup(func() { cancel(); h.Close() })
	deadline := time.Now().Add(60 * time.Second)
	for len(h.Peers()) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the fake peer did not connect to %s", target)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return h, h.Peers()[0].ID, hd
}

// waitBanned waits until node logged a ban of id, and returns its reason.
func waitBanned(t *testing.T, node *procNode, id p2p.PeerID, what string) string {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		for _, l := range logLines([]byte(node.log())) {
			if l.msg() == "p2p: banned peer" && l["peer"] == id.String() {
				r, _ := l["reason"].(string)
				return r
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not ban the peer that sent %s:\n%s", node.name, what, node.logTail())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestByzantinePeers connects peers with the right chain id to a
// validator process and has each misbehave once: a gossip frame that
// announces more than a vote's size cap (raw QUIC, since chain/p2p will
// not send it), a vote that does not decode, and a finalized block whose
// certificate's signatures are forged (the block of a live proposal,
// certified for its height and the next, so that it reaches the
// signature check). The validator bans each
// (a log line naming it) and keeps finalizing with the others.
func TestByzantinePeers(t *testing.T) {
	if testing.Short() {
		t.Skip("starts four node processes")
	}
	n := newFaultNet(t, netOptions{validators: 4, epoch: 20})
	v := n.vals[0]
	v.waitHeight(3, 90*time.Second)
	g, err := readGenesis(n.gen)
	if err != nil {
		t.Fatal(err)
	}
	chainID := g.ID()

	// 1. Oversized: a gossip header announcing MaxVoteMsg+1 bytes.
	_, key, err := types.GenerateKey(crand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tlsConf, err := task.ServerTLS(key)
	if err != nil {
		t.Fatal(err)
	}
	tlsConf.InsecureSkipVerify = true
	tlsConf.NextProtos = []string{p2p.ALPN}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := quic.DialAddr(ctx, v.p2p, tlsConf, &quic.Config{})
	if err != nil {
		t.Fatalf("raw QUIC dial: %v", err)
	}
	defer conn.CloseWithError(0, "")
	s, err := conn.OpenUniStream()
	if err != nil {
		t.Fatal(err)
	}
	hdr := []byte{byte(types.MsgVote), 0, 0, 0, 0}
	binary.BigEndian.PutUint32(hdr[1:], uint32(types.MsgVote.MaxMessage()+1))
	if _, err := s.Write(hdr); err != nil {
		t.Fatal(err)
	}
	var rawID types.AccountID
	copy(rawID[:], key.Public().(ed25519.PublicKey))
	t.Logf("oversized frame: banned: %s", waitBanned(t, v, rawID, "an oversized vote"))

	// 2. A vote that does not decode.
	h, id, _ := fakePeer(t, chainID, v.p2p)
	if err := h.Send(id, types.MsgVote, []byte("not a vote at all")); err != nil {
		t.Fatal(err)
	}
	t.Logf("garbage vote: banned: %s", waitBanned(t, v, h.ID(), "a garbage vote"))

	// 3. A forged finalized block: a live proposal's block with a
	// certificate of made-up signatures of three of the four validators.
	h, id, hd := fakePeer(t, chainID, v.p2p)
	banned := ""
	for try := 0; banned == "" && try < 40; try++ {
		var p consensus.Proposal
		select {
		case p = <-hd.proposals:
		case <-time.After(30 * time.Second):
			t.Fatalf("the fake peer heard no proposal:\n%s", v.logTail())
		}
		// The node checks a certificate only for the height it decides
		// now: p.Height, or p.Height+1 once p's block is final (which is
		// likely by the time this arrives: the fake peer heard p relayed).
		for _, height := range []uint64{p.Height, p.Height + 1} {
			c := consensus.Commit{Block: p.Block, Cert: consensus.Certificate{Height: height, Round: p.Round, BlockID: p.BlockID}}
			for i := range 3 {
				var sig types.Signature
				crand.Read(sig[:])
				c.Cert.Sigs = append(c.Cert.Sigs, consensus.CommitSig{Index: i, Signature: sig})
			}
			b, err := consensus.EncodeMessage(c)
			if err != nil {
				t.Fatal(err)
			}
			h.Send(id, types.MsgBlock, b) // an error: disconnected, banned
		}
		time.Sleep(300 * time.Millisecond)
		for _, l := range logLines([]byte(v.log())) {
			if l.msg() == "p2p: banned peer" && l["peer"] == h.ID().String() {
				banned, _ = l["reason"].(string)
			}
		}
	}
	t.Logf("forged certificate: banned: %s", waitBanned(t, v, h.ID(), "a forged block"))

	// The validators keep finalizing, all alike.
	tip := heads(t, n.vals[:1])[0]
	for _, o := range n.vals {
		o.waitHeight(tip+3, 90*time.Second)
	}
	hs := heads(t, n.vals)
	agree(t, n.vals, 1, slices.Min(hs))
	for _, o := range n.vals {
		o.stop()
	}
	checkLogs(t, n.vals)
}
