package main

// Benchmarks of the chain as a network (issue 7, "Performance"): finality
// over real QUIC on loopback, snapshot sync of a large state over p2p next
// to bare quic-go in the same run, block replay through the node's
// catch-up, and bytes on disk after a day of blocks with and without
// pruning. They only run with -bench; docs/performance.md has the figures
// and the exact commands:
//
//	go test -run '^$' -bench FinalityQUIC -benchtime 300x ./cmd/taobox
//	TAOBOX_SYNC_KEYS=1000000 go test -run '^$' -bench SnapSyncQUIC -benchtime 3x ./cmd/taobox
//	go test -run '^$' -bench ReplayQUIC -benchtime 1x ./cmd/taobox
//	TAOBOX_LONG=1 go test -run '^$' -bench DiskDay -benchtime 1x -timeout 1h ./cmd/taobox

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"taobox/chain/node"
	"taobox/chain/p2p"
	"taobox/chain/snapsync"
	"taobox/chain/state"
	"taobox/chain/store"
	"taobox/chain/types"
	"taobox/task"
)

// benchLog discards the nodes' logs.
var benchLog = slog.New(slog.DiscardHandler)

// benchGenesisTimeMs is the genesis time of the benchmark chains (fixed,
// so every run has the same chain id).
const benchGenesisTimeMs = 1_767_225_600_000 // 2026-01-01

// benchAccounts are the funded accounts whose transfers fill the blocks.
const benchAccounts = 16

func benchAccount(i int) ed25519.PrivateKey { return devKey(fmt.Sprintf("bench-account-%d", i)) }

// benchGenesis is the devnet genesis with vals equal validators
// (devValidatorKey(0…vals-1)) and benchAccounts funded accounts.
func benchGenesis(vals int) *state.Genesis {
	var bal []state.GenesisBalance
	for i := range benchAccounts {
		bal = append(bal, state.GenesisBalance{Account: types.AccountIDFromPrivateKey(benchAccount(i)), Free: 1_000_000 * types.RaoPerTAO})
	}
	g := devnetGenesis("taobox-bench", benchGenesisTimeMs, bal)
	withDevAuthorities(g, vals)
	return g
}

// transferFiller submits k transfers per block among the bench accounts,
// round robin, tracking their nonces.
type transferFiller struct {
	chain  types.Hash
	nonces [benchAccounts]uint64
	next   int
}

func (f *transferFiller) submit(b *testing.B, n *node.Node, k int) {
	head, _ := n.Head()
	for range k {
		from := f.next % benchAccounts
		f.next++
		tx := types.Tx{Nonce: f.nonces[from], ValidUntil: head + 100,
			Call: types.Transfer{To: types.AccountIDFromPrivateKey(benchAccount((from + 1) % benchAccounts)), Amount: types.RaoPerTAO}}
		tx.Sign(benchAccount(from), f.chain)
		if _, err := n.Submit(&tx); err != nil {
			b.Fatalf("submit a transfer: %v", err)
		}
		f.nonces[from]++
	}
}

// benchProduce makes one block on a lone validator and checks it holds want txs.
func benchProduce(b *testing.B, n *node.Node, want int) {
	blk, err := n.ProduceBlock()
	if err != nil {
		b.Fatal(err)
	}
	if len(blk.Txs) != want {
		b.Fatalf("block %d has %d txs, want %d", blk.Header.Height, len(blk.Txs), want)
	}
}

// benchEnvInt reads a positive integer from the environment, else def.
func benchEnvInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// BenchmarkFinalityQUIC: the devnet's chain (startDevChain: N validators of
// equal power in this process, each with its own fsynced goleveldb store
// and its own QUIC endpoint on 127.0.0.1, full mesh) with empty blocks and
// a tiny BlockTime, so the time between two commits is BlockTime plus the
// consensus latency of a height: propose, execute, prevote, precommit,
// commit (p50-consensus-ms is the median interval less BlockTime). It
// reports ms per finalized block over b.N blocks seen by validator 0, the
// p50, p99 and max of the commit-to-commit intervals, and the p2p
// counters over those blocks: gossip messages each node received per
// block, and messages dropped by the receivers' per-peer rate limits
// (p2p Config.GossipRate, default 500/s: at 1 ms blocks 4 validators
// exceed it after about a second, the 20 ms case stays under it), by full
// send queues, and bans.
func BenchmarkFinalityQUIC(b *testing.B) {
	for _, c := range []struct {
		vals      int
		blockTime time.Duration
	}{{4, time.Millisecond}, {4, 20 * time.Millisecond}, {16, time.Millisecond}} {
		vals := c.vals
		b.Run(fmt.Sprintf("validators=%d/blocktime=%v", vals, c.blockTime), func(b *testing.B) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			dc, err := startDevChain(ctx, b.TempDir(), benchGenesis(vals), c.blockTime, benchLog, nil)
			if err != nil {
				b.Fatal(err)
			}
			n0 := dc.nodes[0]
			blocks, unsub := n0.Subscribe()
			runErr := make(chan error, 1)
			go func() { runErr <- n0.Run(ctx) }()
			defer func() {
				unsub()
				cancel()
				<-runErr
				dc.stop()
				n0.Close()
			}()
			next := func() (uint64, time.Time) {
				select {
				case bi, ok := <-blocks:
					if !ok {
						b.Fatal("validator 0 closed")
					}
					return bi.Height, time.Now()
				case <-time.After(60 * time.Second):
					b.Fatalf("no block finalized in 60 s (validators: %v); where each stands:\n%s", dc.Err(), benchPositions(dc))
				}
				return 0, time.Time{}
			}
			for h := uint64(0); h < 3; { // warm up: connections, first rounds
				h, _ = next()
			}
			first, t0 := next()
			before := benchNetTotals(dc)
			b.ResetTimer()
			var gaps []time.Duration
			var slowest time.Duration
			var slowestAt uint64
			last, tl := first, t0
			for last < first+uint64(b.N) {
				h, t := next()
				if d := t.Sub(tl); d > slowest {
					slowest, slowestAt = d, h
				}
				for range h - last { // a block the buffer lost counts its share
					gaps = append(gaps, t.Sub(tl)/time.Duration(h-last))
				}
				last, tl = h, t
			}
			b.StopTimer()
			after := benchNetTotals(dc)
			blocksSeen := float64(last - first)
			b.ReportMetric(float64(after.in-before.in)/float64(vals)/blocksSeen, "gossip-in/node/block")
			b.ReportMetric(float64(after.limited-before.limited), "rate-limited")
			b.ReportMetric(float64(after.drops-before.drops), "queue-drops")
			b.ReportMetric(float64(after.bans-before.bans), "bans")
			b.Logf("heights %d…%d; the slowest came %.1f ms after its parent: height %d (authority epoch %d blocks)",
				first, last, benchMs(slowest), slowestAt, devnetAuthorityEpoch)
			slices.Sort(gaps)
			pct := func(p float64) float64 { return benchMs(gaps[min(len(gaps)-1, int(p*float64(len(gaps))))]) }
			b.ReportMetric(benchMs(tl.Sub(t0))/float64(last-first), "ms/block")
			b.ReportMetric(pct(0.50)-benchMs(c.blockTime), "p50-consensus-ms")
			b.ReportMetric(pct(0.50), "p50-ms")
			b.ReportMetric(pct(0.99), "p99-ms")
			b.ReportMetric(benchMs(gaps[len(gaps)-1]), "max-ms")
			if err := dc.Err(); err != nil {
				b.Fatal(err)
			}
		})
	}
}

// benchNetStats sums the p2p counters of a devChain's hosts.
type benchNetStats struct{ in, limited, drops, bans uint64 }

func benchNetTotals(dc *devChain) benchNetStats {
	var t benchNetStats
	for _, cn := range dc.nets {
		st := cn.host.Stats()
		for _, v := range st.MsgsIn {
			t.in += v
		}
		t.limited += st.Limited
		t.drops += st.Drops
		t.bans += st.Bans
	}
	return t
}

// benchPositions describes each validator's head and consensus position.
func benchPositions(dc *devChain) string {
	var out []byte
	for i, n := range dc.nodes {
		h, _ := n.Head()
		c := n.ConsensusState()
		st := dc.nets[i].host.Stats()
		out = fmt.Appendf(out, "validator %d: head %d, deciding height %d round %d step %s, peers %d, rate-limited %d, queue drops %d, bans %d, halted %q\n",
			i, h, c.Height, c.Round, c.Step, len(dc.nets[i].host.Peers()), st.Limited, st.Drops, st.Bans, c.Halted)
	}
	return string(out)
}

func benchMs(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// BenchmarkSnapSyncQUIC: a state of TAOBOX_SYNC_KEYS keys (default
// 100,000; the figure is 1,000,000) of 32-byte keys and 64-byte
// values, exported by one p2p host (the node's chainNet with its snapshot
// exporter, default p2p limits) and synced by another through
// snapsync.Sync over PeerSource (p2p Host.Request on loopback QUIC) into a
// fresh fsynced store: every chunk verified against the state root and
// imported with its progress marker, then the whole state rehashed. In
// the same run, bare quic-go moves the same bytes between two other
// loopback endpoints with the p2p TLS (ed25519 certificates, TLS 1.3,
// client certificates) and quic.Config, as chunk-sized streams with the
// sync's concurrency for one peer (snapsync.DefaultPerPeer): raw-MB/s, and
// sync/raw is the ratio of the two.
func BenchmarkSnapSyncQUIC(b *testing.B) {
	n := benchEnvInt("TAOBOX_SYNC_KEYS", 100_000)
	chain := types.HashBytes([]byte("taobox bench sync chain"))
	src, err := store.Open(b.TempDir(), store.Options{NoSync: true, KeepBlocks: store.KeepAll})
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	const perBlock = 250_000 // a few big batches
	for h := 0; h*perBlock < n; h++ {
		ch := make([]store.KV, 0, perBlock)
		for i := h * perBlock; i < min((h+1)*perBlock, n); i++ {
			k := types.HashBytes(fmt.Appendf(nil, "key %d", i))
			v := types.HashBytes(k[:])
			w := types.HashBytes(v[:])
			ch = append(ch, store.KV{Key: k[:], Value: append(v[:], w[:]...)})
		}
		hdr := fmt.Appendf(nil, "bench header %d", h)
		if _, err := src.CommitBlock(store.BlockCommit{Height: uint64(h), Hash: types.HashBytes(hdr), Header: hdr, Changes: ch}); err != nil {
			b.Fatal(err)
		}
	}
	height, hash, _ := src.Head()
	hdr, _, err := src.Header(height)
	if err != nil {
		b.Fatal(err)
	}
	trusted := snapsync.Trusted{Height: height, BlockHash: hash, StateRoot: src.StateRoot(), Header: hdr}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	server, err := startChainNet(ctx, netConfig{Key: devKey("bench-server"), ChainID: chain, Listen: "127.0.0.1:0", DataDir: b.TempDir(), Logger: benchLog})
	if err != nil {
		b.Fatal(err)
	}
	defer server.Close()
	m, err := server.snaps.Take(src)
	if err != nil {
		b.Fatal(err)
	}
	var bytes int64
	for _, c := range m.Chunks {
		bytes += int64(c.Bytes)
	}
	client, err := startChainNet(ctx, netConfig{Key: devKey("bench-client"), ChainID: chain, Listen: "127.0.0.1:0",
		Bootstrap: []string{server.host.Addr().String()}, Logger: benchLog})
	if err != nil {
		b.Fatal(err)
	}
	defer client.Close()
	if client.waitPeers(ctx, 10*time.Second) == 0 {
		b.Fatal("the client did not connect to the server in 10 s")
	}
	b.Logf("%d keys, %d chunks, %.1f MB", n, len(m.Chunks), float64(bytes)/1e6)

	raw := newRawQUIC(b, int(snapsync.DefaultChunkBytes))
	var syncDur, chunkDur, rawDur time.Duration
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		dst, err := store.Open(b.TempDir(), store.Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		var chunksDone time.Time
		cfg := snapsync.Config{OnProgress: func(p snapsync.Progress) {
			if p.Phase == "verify" {
				chunksDone = time.Now()
			}
		}}
		t0 := time.Now()
		if err := snapsync.Sync(ctx, cfg, dst, trusted, client.sources()); err != nil {
			b.Fatal(err)
		}
		syncDur += time.Since(t0)
		chunkDur += chunksDone.Sub(t0)
		b.StopTimer()
		if dst.StateRoot() != trusted.StateRoot {
			b.Fatal("the synced store has another state root")
		}
		dst.Close()
		t1 := time.Now()
		raw.transfer(b, bytes, snapsync.DefaultPerPeer)
		rawDur += time.Since(t1)
		b.StartTimer()
	}
	b.StopTimer()
	per := func(d time.Duration) float64 { return d.Seconds() / float64(b.N) }
	mbs := func(d time.Duration) float64 { return float64(bytes) / 1e6 / per(d) }
	b.ReportMetric(per(syncDur), "sync-s")
	b.ReportMetric(mbs(syncDur), "sync-MB/s")
	b.ReportMetric(float64(n)/per(syncDur), "sync-keys/s")
	b.ReportMetric(mbs(chunkDur), "chunks-MB/s")
	b.ReportMetric(mbs(rawDur), "raw-MB/s")
	b.ReportMetric(mbs(syncDur)/mbs(rawDur), "sync/raw")
}

// rawQUIC is bare quic-go between two loopback transports, with the p2p
// package's TLS setup and quic.Config values: a server that answers every
// stream with reply bytes after reading the request to EOF.
type rawQUIC struct {
	conn  *quic.Conn
	reply int
}

func newRawQUIC(b *testing.B, replySize int) *rawQUIC {
	b.Helper()
	qc := &quic.Config{ // chain/p2p's quicConfig
		HandshakeIdleTimeout:       5 * time.Second,
		MaxIdleTimeout:             30 * time.Second,
		KeepAlivePeriod:            10 * time.Second,
		MaxIncomingStreams:         32,
		MaxIncomingUniStreams:      128,
		MaxStreamReceiveWindow:     4 << 20,
		MaxConnectionReceiveWindow: 16 << 20,
	}
	tlsOf := func(name string) *tls.Config {
		c, err := task.ServerTLS(devKey(name))
		if err != nil {
			b.Fatal(err)
		}
		return &tls.Config{MinVersion: tls.VersionTLS13, NextProtos: []string{p2p.ALPN}, Certificates: c.Certificates, SessionTicketsDisabled: true}
	}
	stls, ctls := tlsOf("bench-raw-server"), tlsOf("bench-raw-client")
	stls.ClientAuth = tls.RequireAnyClientCert
	ctls.InsecureSkipVerify = true // as p2p: the pinned key, not a CA, is the identity
	ctls.ServerName = "taobox-p2p"
	udp := func() *quic.Transport {
		pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			b.Fatal(err)
		}
		tr := &quic.Transport{Conn: pc}
		b.Cleanup(func() { tr.Close(); pc.Close() })
		return tr
	}
	st, ct := udp(), udp()
	ln, err := st.Listen(stls, qc)
	if err != nil {
		b.Fatal(err)
	}
	reply := make([]byte, replySize)
	go func() {
		for {
			c, err := ln.Accept(context.Background())
			if err != nil {
				return
			}
			go func() {
				for {
					s, err := c.AcceptStream(context.Background())
					if err != nil {
						return
					}
					go func() {
						io.Copy(io.Discard, s)
						s.Write(reply)
						s.Close()
					}()
				}
			}()
		}
	}()
	conn, err := ct.Dial(context.Background(), ln.Addr(), ctls, qc)
	if err != nil {
		b.Fatal(err)
	}
	return &rawQUIC{conn: conn, reply: replySize}
}

// transfer moves at least total bytes as replies, inFlight streams at a time.
func (q *rawQUIC) transfer(b *testing.B, total int64, inFlight int) {
	streams := int((total + int64(q.reply) - 1) / int64(q.reply))
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, inFlight)
	for range inFlight {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(streams) {
				s, err := q.conn.OpenStreamSync(context.Background())
				if err != nil {
					errs <- err
					return
				}
				s.Write(make([]byte, 16))
				s.Close()
				got, err := io.ReadAll(s)
				if err == nil && len(got) != q.reply {
					err = fmt.Errorf("raw quic: got %d bytes, want %d", len(got), q.reply)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := errors.Join(benchCollect(errs)...); err != nil {
		b.Fatal(err)
	}
}

func benchCollect(c <-chan error) []error {
	var out []error
	for e := range c {
		out = append(out, e)
	}
	return out
}

// BenchmarkReplayQUIC: a lone validator produces TAOBOX_REPLAY_BLOCKS
// blocks (default 2,000) of 4 transfers each; then a fresh follower (no
// key, its own fsynced store and QUIC endpoint) connects to it and the
// validator finalizes one more block, whose gossip puts the follower
// behind: it catches up through ReqBlocks (types.MaxBlocksPerReq blocks a
// request), verifying each certificate, executing and committing each
// block. blocks/s is the follower's replay speed over the whole chain,
// from that last block until the follower's head equals the validator's.
func BenchmarkReplayQUIC(b *testing.B) {
	blocks := benchEnvInt("TAOBOX_REPLAY_BLOCKS", 2000)
	const perBlock = 4
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	g := benchGenesis(1)
	prodNet, err := startChainNet(ctx, netConfig{Key: devValidatorKey(0), ChainID: g.ID(), Listen: "127.0.0.1:0", Logger: benchLog})
	if err != nil {
		b.Fatal(err)
	}
	defer prodNet.Close()
	prod, err := node.Open(node.Config{DataDir: b.TempDir(), Genesis: g, Authority: devValidatorKey(0), BlockTime: time.Hour, Network: prodNet, Logger: benchLog})
	if err != nil {
		b.Fatal(err)
	}
	defer prod.Close()
	prodNet.attach(ctx, prod, 0)
	f := &transferFiller{chain: prod.ChainID()}
	for range blocks {
		f.submit(b, prod, perBlock)
		benchProduce(b, prod, perBlock)
	}
	b.ResetTimer()
	var replayed uint64
	var dur time.Duration
	for range b.N {
		b.StopTimer()
		fnet, err := startChainNet(ctx, netConfig{Key: devKey(fmt.Sprintf("bench-follower-%d", replayed)), ChainID: g.ID(), Listen: "127.0.0.1:0",
			Bootstrap: []string{prodNet.host.Addr().String()}, Logger: benchLog})
		if err != nil {
			b.Fatal(err)
		}
		fol, err := node.Open(node.Config{DataDir: b.TempDir(), Genesis: g, Network: fnet, Logger: benchLog})
		if err != nil {
			b.Fatal(err)
		}
		fnet.attach(ctx, fol, 0)
		fctx, fcancel := context.WithCancel(ctx)
		runErr := make(chan error, 1)
		go func() { runErr <- fol.Run(fctx) }()
		if fnet.waitPeers(ctx, 10*time.Second) == 0 || prodNet.waitPeers(ctx, 10*time.Second) == 0 {
			b.Fatal("the follower did not connect in 10 s")
		}
		heads, unsub := fol.Subscribe()
		f.submit(b, prod, perBlock)
		b.StartTimer()
		t0 := time.Now()
		benchProduce(b, prod, perBlock)
		target, _ := prod.Head()
		deadline := time.After(10 * time.Minute)
		for h := uint64(0); h < target; {
			select {
			case bi := <-heads:
				h = bi.Height
			case <-time.After(time.Second):
				h, _ = fol.Head()
			case <-deadline:
				h, _ = fol.Head()
				b.Fatalf("the follower is at %d of %d after 10 minutes", h, target)
			}
		}
		dur += time.Since(t0)
		replayed += target
		b.StopTimer()
		unsub()
		fcancel()
		<-runErr
		ph, phash := prod.Head()
		if fh, fhash := fol.Head(); fh != ph || fhash != phash {
			b.Fatalf("follower head %d %s, validator head %d %s", fh, fhash, ph, phash)
		}
		fol.Close()
		fnet.Close()
		b.StartTimer()
	}
	b.StopTimer()
	b.ReportMetric(float64(replayed)/dur.Seconds(), "blocks/s")
	b.ReportMetric(float64(replayed*perBlock)/dur.Seconds(), "txs/s")
}

// BenchmarkDiskDay: a lone validator produces a day of blocks (7,200 at
// 12 s, timestamped 12 s apart by the node's clock; TAOBOX_DISKDAY_BLOCKS
// overrides, and without TAOBOX_LONG=1 a 1,440-block "fifth of a day"
// runs) with a trickle of 3 transfers per block, into a store that keeps
// the default 7,200 blocks, 720 blocks, or every block (store.KeepAll).
// After the last block the store compacts the pruned ranges
// (CompactPruned): live-MB is the data dir then, with the node open (its
// goleveldb journal holds the writes since the last memtable flush, up to
// a memtable of 32 MiB). MB is the data dir after the node closed and the
// store was reopened (which turns the journal into a table) and compacted
// again: allocated blocks, as du counts them; apparent-MB sums file sizes.
func BenchmarkDiskDay(b *testing.B) {
	blocks := 1440
	if os.Getenv("TAOBOX_LONG") == "1" {
		blocks = 7200
	}
	blocks = benchEnvInt("TAOBOX_DISKDAY_BLOCKS", blocks)
	const perBlock = 3
	for _, keep := range []struct {
		name string
		keep uint64
	}{{"keep=7200", node.DefaultKeepBlocks}, {"keep=720", 720}, {"keep=all", store.KeepAll}} {
		b.Run(keep.name, func(b *testing.B) {
			var bytesOnDisk, apparent, live int64
			var dur time.Duration
			for range b.N {
				b.StopTimer()
				dir := b.TempDir()
				var tick atomic.Int64
				clock := func() time.Time {
					return time.UnixMilli(benchGenesisTimeMs).Add(time.Duration(tick.Load()) * 12 * time.Second)
				}
				n, err := node.Open(node.Config{DataDir: dir, Genesis: benchGenesis(1), Authority: devValidatorKey(0), BlockTime: time.Hour,
					Logger: benchLog, KeepBlocks: keep.keep, Now: clock})
				if err != nil {
					b.Fatal(err)
				}
				f := &transferFiller{chain: n.ChainID()}
				b.StartTimer()
				t0 := time.Now()
				for range blocks {
					tick.Add(1)
					f.submit(b, n, perBlock)
					benchProduce(b, n, perBlock)
				}
				if err := n.Store().CompactPruned(); err != nil {
					b.Fatal(err)
				}
				dur += time.Since(t0)
				b.StopTimer()
				live, _ = benchDu(b, dir)
				if err := n.Close(); err != nil {
					b.Fatal(err)
				}
				// Reopening replays goleveldb's journal into a table, so the
				// figure no longer depends on how full the memtable was.
				st, err := store.Open(dir, store.Options{KeepBlocks: keep.keep})
				if err != nil {
					b.Fatal(err)
				}
				if err := st.CompactPruned(); err != nil {
					b.Fatal(err)
				}
				if err := st.Close(); err != nil {
					b.Fatal(err)
				}
				bytesOnDisk, apparent = benchDu(b, dir)
				b.StartTimer()
			}
			b.StopTimer()
			b.ReportMetric(float64(bytesOnDisk)/1e6, "MB")
			b.ReportMetric(float64(apparent)/1e6, "apparent-MB")
			b.ReportMetric(float64(live)/1e6, "live-MB")
			b.ReportMetric(float64(bytesOnDisk)/float64(blocks), "bytes/block")
			b.ReportMetric(benchMs(dur)/float64(blocks*b.N), "ms/block")
		})
	}
}

// benchDu returns the bytes allocated to the files under dir (st_blocks × 512,
// as du counts them) and the sum of their sizes.
func benchDu(b *testing.B, dir string) (allocated, apparent int64) {
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil // a table an open store's compaction just removed
		}
		if err != nil {
			return err
		}
		apparent += fi.Size()
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			allocated += st.Blocks * 512
		} else {
			allocated += fi.Size()
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return allocated, apparent
}
