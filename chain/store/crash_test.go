package store

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/blake2b"
)

// The kill -9 test. TestCrashKill9 re-executes this test binary as a child
// (TestCrashChild, selected by crashEnvDir) that opens a store with the
// production settings (Sync=true) and imports synthetic blocks forever,
// printing "open N" (the next height), "committing h" before each
// CommitBlock and "committed h root" after it. The parent kills the child
// with SIGKILL after a random delay (sometimes during startup), opens the
// store itself with FullCheck and compares everything against a fresh
// in-memory replay of blocks 0..head; the next child must resume at head+1.
//
// Each block's content is a pure function of its height (crashBlock), so
// the parent can replay without talking to the child.

const (
	crashEnvDir      = "TAOBOX_STORE_CRASH_DIR"
	crashEnvDeadline = "TAOBOX_STORE_CRASH_DEADLINE"
	crashBuckets     = 256
	crashKeep        = 25 // prune while importing
	crashEpochEvery  = 10
	crashNewPerBlock = 45
)

// crashOptions are the child's options: real fsync, pruning, and a small
// cache so that blocks with big values (over the 2 MiB write buffer) take
// goleveldb's transaction path instead of the journal.
func crashOptions() Options {
	return Options{Buckets: crashBuckets, KeepBlocks: crashKeep, CacheMiB: 8}
}

// crashBlock is the block at height h: new keys, overwrites and deletes of
// earlier blocks' keys, a key written twice, sometimes big values.
func crashBlock(h uint64) BlockCommit {
	rng := rand.New(rand.NewPCG(0x7a0b0c5, h))
	key := func(height uint64, i int) []byte { return fmt.Appendf(nil, "k/%d/%d", height, i) }
	val := func(n int) []byte {
		v := make([]byte, n)
		for i := range v {
			v[i] = byte(rng.Uint32())
		}
		return v
	}
	var ch []KV
	for i := range 5 + rng.IntN(crashNewPerBlock-5) {
		ch = append(ch, KV{Key: key(h, i), Value: val(1 + rng.IntN(200))})
	}
	if h > 0 {
		for range rng.IntN(20) { // overwrite (or recreate) an earlier key
			ch = append(ch, KV{Key: key(rng.Uint64N(h), rng.IntN(crashNewPerBlock)), Value: val(rng.IntN(100))})
		}
		for range rng.IntN(12) { // delete an earlier key (maybe absent)
			ch = append(ch, KV{Key: key(rng.Uint64N(h), rng.IntN(crashNewPerBlock))})
		}
	}
	if rng.IntN(4) == 0 { // the same key twice in one block: the last write wins
		k := key(h, 0)
		if rng.IntN(2) == 0 {
			ch = append(ch, KV{Key: k})
		} else {
			ch = append(ch, KV{Key: k, Value: []byte("second")})
		}
	}
	if rng.IntN(6) == 0 { // big values on a few fixed keys (bounded memory)
		for range 1 + rng.IntN(3) {
			pattern := val(16)
			n := 256<<10 + rng.IntN(MaxValueSize-256<<10)
			ch = append(ch, KV{Key: fmt.Appendf(nil, "big/%d", rng.IntN(4)), Value: bytes.Repeat(pattern, n/16)})
		}
	}
	hdr := fmt.Appendf(nil, "header %d", h)
	return BlockCommit{
		Height:        h,
		Hash:          blake2b.Sum256(hdr),
		Header:        hdr,
		Body:          val(rng.IntN(2000)),
		Events:        val(rng.IntN(500)),
		Changes:       ch,
		EpochBoundary: h%crashEpochEvery == 0,
	}
}

// TestCrashChild is the child process of TestCrashKill9; it skips unless
// the parent set crashEnvDir.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashEnvDir)
	if dir == "" {
		t.Skip("the child process of TestCrashKill9")
	}
	out := os.Stdout
	deadline := time.Now().Add(time.Minute) // never outlive a dead parent for long
	if d, err := time.ParseDuration(os.Getenv(crashEnvDeadline)); err == nil {
		deadline = time.Now().Add(d)
	}
	s, err := Open(dir, crashOptions())
	if err != nil {
		fmt.Fprintf(out, "error open: %v\n", err)
		os.Exit(3)
	}
	next := uint64(0)
	if h, _, ok := s.Head(); ok {
		next = h + 1
	}
	fmt.Fprintf(out, "open %d\n", next)
	for time.Now().Before(deadline) {
		c := crashBlock(next)
		fmt.Fprintf(out, "committing %d\n", next)
		root, err := s.CommitBlock(c)
		if err != nil {
			fmt.Fprintf(out, "error commit %d: %v\n", next, err)
			os.Exit(3)
		}
		fmt.Fprintf(out, "committed %d %v\n", next, root)
		next++
	}
	fmt.Fprintf(out, "deadline\n")
	os.Exit(0)
}

// childRun is what one child printed.
type childRun struct {
	opened     bool
	next       uint64   // from "open N"
	committing []uint64 // heights announced
	committed  map[uint64]string
	lastLine   string
}

func parseChild(t *testing.T, out []byte) childRun {
	t.Helper()
	r := childRun{committed: map[uint64]string{}}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		f := strings.Fields(line)
		num := func() uint64 {
			if len(f) < 2 {
				return 0
			}
			n, _ := strconv.ParseUint(f[1], 10, 64)
			return n
		}
		switch {
		case len(f) == 0:
			continue
		case strings.HasPrefix(line, "error"), line == "deadline":
			t.Fatalf("child: %s\nfull output:\n%s", line, out)
		case f[0] == "open" && len(f) == 2:
			r.opened, r.next = true, num()
		case f[0] == "committing" && len(f) == 2:
			r.committing = append(r.committing, num())
		case f[0] == "committed" && len(f) == 3:
			r.committed[num()] = f[2]
		default:
			continue // the test framework's own lines, or a line cut by the kill
		}
		r.lastLine = line
	}
	return r
}

func TestCrashKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	iters := 50 // the bar, in every `make test` (about 7 s)
	if os.Getenv("TAOBOX_LONG") != "" {
		iters = 200
	}
	if v, err := strconv.Atoi(os.Getenv("TAOBOX_CRASH_ITERS")); err == nil && v > 0 {
		iters = v
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("kill timing seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 9))
	dir := t.TempDir()

	var (
		head         = int64(-1) // verified head so far
		midCommit    int         // killed between "committing h" and "committed h"
		midLanded    int         // ... and block h was on disk nonetheless
		midStartup   int         // killed before the child printed "open"
		resumes      int         // children that printed "open N" after a kill
		blocksByKids int
	)
	for i := range iters {
		delay := time.Duration(20+rng.IntN(230)) * time.Millisecond
		if rng.IntN(6) == 0 {
			delay = time.Duration(rng.IntN(40)) * time.Millisecond // likely during startup or Open
		}
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashEnvDir+"="+dir, crashEnvDeadline+"=30s")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(delay)
		if err := cmd.Process.Kill(); err != nil { // SIGKILL
			t.Fatal(err)
		}
		if err := cmd.Wait(); err == nil || !strings.Contains(err.Error(), "killed") {
			t.Fatalf("iteration %d: the child ended on its own (%v) instead of being killed:\n%s", i, err, out.Bytes())
		}
		run := parseChild(t, out.Bytes())

		// The child resumes at the verified head + 1 and imports in order.
		if run.opened {
			if int64(run.next) != head+1 {
				t.Fatalf("iteration %d: child opened at %d, the verified head is %d", i, run.next, head)
			}
			if head >= 0 {
				resumes++
			}
		} else {
			midStartup++
		}
		for j, h := range run.committing {
			if h != run.next+uint64(j) {
				t.Fatalf("iteration %d: child committed %d out of order", i, h)
			}
		}
		blocksByKids += len(run.committed)

		// Bounds on the head the store must have now.
		lo, hi := head, head
		for h := range run.committed {
			lo, hi = max(lo, int64(h)), max(hi, int64(h))
		}
		mid := false
		if n := len(run.committing); n > 0 {
			last := run.committing[n-1]
			hi = max(hi, int64(last))
			_, done := run.committed[last]
			mid = !done && strings.HasPrefix(run.lastLine, "committing")
		}

		got := verifyCrashStore(t, dir, lo, hi, run)
		if mid {
			midCommit++
			if got == hi {
				midLanded++
			}
		}
		t.Logf("iteration %d: kill after %v, %d blocks committed, head %d, last line %q", i, delay, len(run.committed), got, run.lastLine)
		head = got
	}
	t.Logf("%d kills: %d mid-commit (%d of those had the block on disk, %d not), %d during startup; %d resumes checked; %d blocks imported, final head %d",
		iters, midCommit, midLanded, midCommit-midLanded, midStartup, resumes, blocksByKids, head)
	if iters >= 20 && midCommit == 0 {
		t.Errorf("no kill landed mid-commit in %d iterations", iters)
	}
}

// verifyCrashStore opens the store in dir with FullCheck, checks that its
// head is within [lo, hi] and that every record and the whole state equal a
// fresh replay of blocks 0..head, and returns the head (-1 if none).
func verifyCrashStore(t *testing.T, dir string, lo, hi int64, run childRun) int64 {
	t.Helper()
	o := crashOptions()
	o.FullCheck = true
	s, err := Open(dir, o)
	if err != nil {
		t.Fatalf("reopen after kill: %v", err)
	}
	defer s.Close()
	head := int64(-1)
	if h, hash, ok := s.Head(); ok {
		head = int64(h)
		if want := crashBlock(h).Hash; hash != want {
			t.Fatalf("head %d has hash %v, want %v", h, hash, want)
		}
	}
	if head < lo || head > hi {
		t.Fatalf("head %d after the kill, want between %d (acknowledged) and %d (announced)", head, lo, hi)
	}
	if head < 0 {
		return head
	}
	if r, root := run.committed[uint64(head)], s.StateRoot(); r != "" && r != hex.EncodeToString(root[:]) {
		t.Fatalf("head %d: state root %x, the child reported %s", head, root, r)
	}

	// A fresh replay from genesis, checking each block's records.
	m := model{}
	base := uint64(0)
	if uint64(head)+1 > crashKeep {
		base = uint64(head) + 1 - crashKeep
	}
	if s.Base() != base {
		t.Fatalf("Base() = %d, want %d", s.Base(), base)
	}
	var epochs []uint64
	for h := uint64(0); h <= uint64(head); h++ {
		c := crashBlock(h)
		m.apply(c.Changes)
		kept := h >= base
		hdr, hasHdr, err1 := s.Header(h)
		body, hasBody, err2 := s.Body(h)
		ev, hasEv, err3 := s.Events(h)
		if err := firstErr(err1, err2, err3); err != nil {
			t.Fatal(err)
		}
		if hasBody != kept || hasEv != kept || hasHdr != (kept || c.EpochBoundary) {
			t.Fatalf("block %d (head %d): header %v body %v events %v; want body/events %v, header %v",
				h, head, hasHdr, hasBody, hasEv, kept, kept || c.EpochBoundary)
		}
		if hasHdr && !bytes.Equal(hdr, c.Header) || kept && (!bytes.Equal(body, c.Body) || !bytes.Equal(ev, c.Events)) {
			t.Fatalf("block %d: a record differs from the block committed", h)
		}
		if c.EpochBoundary {
			epochs = append(epochs, h)
		}
	}
	for _, p := range []byte{pHeader, pBody, pEvents, pEpoch} {
		if _, ok, _ := s.dbGet(s.db, heightKey(p, uint64(head)+1)); ok {
			t.Fatalf("a %s above the head exists", recordName(p))
		}
	}
	if got, _ := s.EpochBoundaries(0, 1<<30); fmt.Sprint(got) != fmt.Sprint(epochs) {
		t.Fatalf("epoch boundaries %v, want %v", got, epochs)
	}

	// The state: exactly the replayed map, and three roots that agree.
	if d := sameState(stateOf(t, s), m); d != "" {
		t.Fatalf("head %d: state differs from the replay: %s", head, d)
	}
	snap, err := s.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Release()
	scratch, err := snap.ComputeRoot()
	if err != nil {
		t.Fatal(err)
	}
	if ref := refRoot(m, crashBuckets); s.StateRoot() != scratch || scratch != ref {
		t.Fatalf("head %d: state root %v, recomputed from the stored keys %v, replay %v", head, s.StateRoot(), scratch, ref)
	}
	return head
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
