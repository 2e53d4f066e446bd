package snapsync

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"taobox/chain/store"
	"taobox/chain/types"
)

// The kill -9 test of a syncing node. TestSyncKill9 exports a source store
// to chunk files once, then re-executes this test binary as a child
// (TestSyncCrashChild) that syncs a store in a data dir from those files,
// slowly (a delay per chunk), printing "fetch i" before each chunk
// request. The parent kills it with SIGKILL at a random moment, reopens the
// store and reads its progress bitmap; the next child must fetch none of
// the chunks that bitmap marks done. When a child finishes, the parent
// checks the synced store's root and state against the source and starts
// a new round in an empty data dir.

const (
	crashEnvStore  = "TAOBOX_SNAPSYNC_CRASH_STORE"
	crashEnvExport = "TAOBOX_SNAPSYNC_CRASH_EXPORT"
	crashEnvTrust  = "TAOBOX_SNAPSYNC_CRASH_TRUST"
	crashParallel  = 3
	crashDelay     = 8 * time.Millisecond
)

func encodeTrusted(tr Trusted) string {
	return fmt.Sprintf("%d:%x:%x:%x", tr.Height, tr.BlockHash[:], tr.StateRoot[:], tr.Header)
}

func decodeTrusted(s string) (Trusted, error) {
	f := strings.Split(s, ":")
	if len(f) != 4 {
		return Trusted{}, fmt.Errorf("trusted %q", s)
	}
	var tr Trusted
	var err error
	tr.Height, err = strconv.ParseUint(f[0], 10, 64)
	if err != nil {
		return tr, err
	}
	for i, dst := range []*types.Hash{&tr.BlockHash, &tr.StateRoot} {
		b, err := hex.DecodeString(f[1+i])
		if err != nil || len(b) != 32 {
			return tr, fmt.Errorf("trusted hash %q", f[1+i])
		}
		copy(dst[:], b)
	}
	tr.Header, err = hex.DecodeString(f[3])
	return tr, err
}

// lineSource is the child's Source: the exporter's files, a delay per
// chunk, and a "fetch i" line before each request.
type lineSource struct {
	id string
	e  *Exporter
	mu *sync.Mutex
}

func (s lineSource) ID() string { return s.id }
func (s lineSource) Manifest(_ context.Context, h uint64) ([]byte, error) {
	return s.e.Manifest(h)
}
func (s lineSource) Chunk(ctx context.Context, h uint64, i int) ([]byte, error) {
	s.mu.Lock()
	fmt.Fprintf(os.Stdout, "fetch %d\n", i)
	s.mu.Unlock()
	select {
	case <-time.After(crashDelay):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return s.e.Chunk(h, i)
}

// TestSyncCrashChild is the child process of TestSyncKill9; it skips
// unless the parent set crashEnvStore.
func TestSyncCrashChild(t *testing.T) {
	dir := os.Getenv(crashEnvStore)
	if dir == "" {
		t.Skip("the child process of TestSyncKill9")
	}
	fail := func(what string, err error) {
		fmt.Fprintf(os.Stdout, "error %s: %v\n", what, err)
		os.Exit(3)
	}
	tr, err := decodeTrusted(os.Getenv(crashEnvTrust))
	if err != nil {
		fail("trusted", err)
	}
	e, err := NewExporter(ExporterConfig{Dir: os.Getenv(crashEnvExport)})
	if err != nil {
		fail("exporter", err)
	}
	st, err := store.Open(dir, store.Options{}) // production settings: fsync
	if err != nil {
		fail("open", err)
	}
	fmt.Fprintf(os.Stdout, "open\n")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // never outlive a dead parent for long
	defer cancel()
	var mu sync.Mutex
	sources := []Source{lineSource{"p1", e, &mu}, lineSource{"p2", e, &mu}}
	if err := Sync(ctx, Config{Parallel: crashParallel}, st, tr, sources); err != nil {
		fail("sync", err)
	}
	if err := st.Close(); err != nil {
		fail("close", err)
	}
	fmt.Fprintf(os.Stdout, "done\n")
	os.Exit(0)
}

func TestSyncKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	iters := 6
	if os.Getenv("TAOBOX_LONG") != "" {
		iters = 60
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("kill timing seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 11))

	src := sourceStore(t, 256, 3, 800)
	e, m := export(t, src, 4<<10)
	tr := trustedOf(t, src)
	chunks := len(m.Chunks)

	var (
		dir       string
		round     int
		done      []bool // chunks on disk per the last reopen
		fetches   int    // chunk requests in this round
		kills     int    // kills in this round
		midImport int    // kills that left a partial import
		rounds    int
		allKills  int
	)
	newRound := func() {
		round++
		dir = t.TempDir()
		done = make([]bool, chunks)
		fetches, kills = 0, 0
	}
	newRound()
	for i := range iters {
		delay := time.Duration(rng.IntN(250)) * time.Millisecond
		cmd := exec.Command(os.Args[0], "-test.run=^TestSyncCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashEnvStore+"="+dir, crashEnvExport+"="+e.cfg.Dir, crashEnvTrust+"="+encodeTrusted(tr))
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		var werr error
		killed := false
		select {
		case werr = <-exited:
		case <-time.After(delay):
			// SIGKILL; a child that exited at that moment is not killed.
			if err := cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
				t.Fatal(err)
			}
			werr = <-exited
			killed = werr != nil && strings.Contains(werr.Error(), "killed")
		}

		// Parse the child's lines: no chunk marked done may be fetched again.
		finished := false
		sc := bufio.NewScanner(bytes.NewReader(out.Bytes()))
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			switch {
			case len(f) == 0:
			case f[0] == "error":
				t.Fatalf("iteration %d: child: %s", i, sc.Text())
			case f[0] == "done":
				finished = true
			case f[0] == "fetch" && len(f) == 2:
				idx, err := strconv.Atoi(f[1])
				if err != nil || idx < 0 || idx >= chunks {
					continue // a line cut by the kill
				}
				if done[idx] {
					t.Fatalf("iteration %d: chunk %d was fetched again after it was imported", i, idx)
				}
				fetches++
			}
		}
		if !killed && !finished {
			t.Fatalf("iteration %d: child ended with %v without finishing:\n%s", i, werr, out.Bytes())
		}
		if killed {
			kills++
			allKills++
		}

		// Reopen: a partial import resumes, a finished one matches the source.
		st, err := store.Open(dir, store.Options{FullCheck: true})
		if err != nil {
			t.Fatalf("iteration %d: reopen after the kill: %v", i, err)
		}
		if _, _, ok := st.Head(); ok {
			if st.StateRoot() != tr.StateRoot {
				t.Fatalf("iteration %d: synced root %v, want %v", i, st.StateRoot(), tr.StateRoot)
			}
			sameState(t, src, st)
			st.Close()
			if fetches > chunks+kills*crashParallel {
				t.Fatalf("round %d: %d chunk requests for %d chunks and %d kills", round, fetches, chunks, kills)
			}
			t.Logf("iteration %d: round %d synced after %d kills, %d chunk requests for %d chunks", i, round, kills, fetches, chunks)
			rounds++
			newRound()
			continue
		}
		imported := st.Imported()
		st.Close()
		n := 0
		for j, ok := range imported {
			if done[j] && !ok {
				t.Fatalf("iteration %d: chunk %d was imported before and is not now", i, j)
			}
			if ok {
				n++
			}
		}
		if imported != nil {
			done = imported
			if n > 0 && n < chunks {
				midImport++
			}
		}
		t.Logf("iteration %d: killed after %v, %d of %d chunks on disk", i, delay, n, chunks)
	}
	t.Logf("%d children, %d killed, %d kills left a partial import, %d rounds synced to the end", iters, allKills, midImport, rounds)
	if iters >= 20 && (midImport == 0 || rounds == 0) {
		t.Errorf("the kills never landed mid-import (%d) or no round finished (%d)", midImport, rounds)
	}
}
