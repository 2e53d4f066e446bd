package miner

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"taobox/chain/types"
	"taobox/model"
	"taobox/task"
)

func newClient(k []byte, o task.ClientOptions) *task.Client {
	return task.NewClient(k, testNetuid, o)
}

// An honest miner with the tiny model answers exactly what
// GenerateSampled does, streamed, with a final frame that verifies.
func TestHonestAnswerMatchesModel(t *testing.T) {
	tm := startMiner(t, Config{Model: tinyModel(t)})
	c := newClient(valKey, task.ClientOptions{})
	defer c.Close()
	ref := tinyModel(t)
	for _, b := range []task.Body{
		{PromptIDs: []uint32{1, 5, 9}, MaxTokens: 12, ModelHash: testModelHash, TopAlts: 3},
		{PromptIDs: []uint32{1, 2}, MaxTokens: 8, Temperature: 0.9, TopK: 20, TopP: 0.95, Seed: 7, ModelHash: testModelHash},
	} {
		res, err := c.Query(context.Background(), tm.addr, minerID, b)
		if err != nil {
			t.Fatal(err)
		}
		if err := res.Verified(minerID, res.Request); err != nil {
			t.Fatal(err)
		}
		prompt := make([]int, len(b.PromptIDs))
		for i, id := range b.PromptIDs {
			prompt[i] = int(id)
		}
		g, err := ref.GenerateSampled(prompt, model.GenerateOptions{
			Sampler:   model.Sampler{Temperature: float64(b.Temperature), TopK: int(b.TopK), TopP: float64(b.TopP), Seed: b.Seed},
			MaxTokens: int(b.MaxTokens), EOS: -1, Alternatives: int(b.TopAlts),
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(g.IDs) != len(res.Tokens) {
			t.Fatalf("%d tokens, model made %d", len(res.Tokens), len(g.IDs))
		}
		for i, tok := range res.Tokens {
			if int(tok.ID) != g.IDs[i] || tok.LogProb != logProb32(g.LogProbs[i]) {
				t.Fatalf("token %d: got %d/%v, model %d/%v", i, tok.ID, tok.LogProb, g.IDs[i], g.LogProbs[i])
			}
			if len(tok.Top) != int(b.TopAlts) {
				t.Fatalf("token %d: %d alternatives", i, len(tok.Top))
			}
		}
		if res.FirstToken <= 0 || res.Total < res.FirstToken {
			t.Fatalf("latencies %v %v", res.FirstToken, res.Total)
		}
	}
	if got := tm.Metrics()["taobox_miner_connections_total"]; got != 1 {
		t.Fatalf("client used %v connections, want 1", got)
	}
	if got := tm.Metrics()["taobox_miner_tasks_served_total"]; got != 2 {
		t.Fatalf("served %v", got)
	}
	rec := httptest.NewRecorder()
	tm.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, want := range []string{"taobox_miner_tasks_served_total 2\n", `taobox_miner_rejects_total{code="busy"} 0`, fmt.Sprintf(`model_sha256="%x"`, testModelHash)} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("metrics page lacks %q:\n%s", want, rec.Body.String())
		}
	}
}

// Each attack is refused with its own code, and counted. (All go over one
// connection, so the close after Limits.BadRequests sender faults in a row,
// TestBadRequestsCloseConnection, is pushed out of the way.)
func TestAttacksRejectedWithCodes(t *testing.T) {
	tm := startMiner(t, Config{Limits: Limits{BadRequests: 1000}})
	c := rawConn(t, tm.addr)
	garbageBody := bytes.Repeat([]byte{0xff}, 80)
	mismatched := body(1)
	mismatched.ModelHash[0] ^= 1
	oversized := func(envLen uint16, bodyLen uint32) []byte {
		req := signedRequest(t, reqOpt{})
		binary.BigEndian.PutUint16(req, envLen)
		binary.BigEndian.PutUint32(req[2+task.EnvelopeSize:], bodyLen)
		return req
	}
	for _, tc := range []struct {
		name string
		req  []byte
		want task.Code
	}{
		{"honest", signedRequest(t, reqOpt{}), task.CodeOK},
		{"forged signature", signedRequest(t, reqOpt{mutate: func(e *task.Envelope) { e.Sig[10] ^= 1 }}), task.CodeBadSignature},
		{"empty signature", signedRequest(t, reqOpt{mutate: func(e *task.Envelope) { e.Sig = [64]byte{} }}), task.CodeBadSignature},
		{"signed by another key", signedRequest(t, reqOpt{mutate: func(e *task.Envelope) { e.Validator = richID }}), task.CodeBadSignature},
		{"body swapped", func() []byte {
			r := signedRequest(t, reqOpt{})
			r[len(r)-40] ^= 1 // inside the model hash of the body
			return r
		}(), task.CodeBadSignature},
		{"expired timestamp", signedRequest(t, reqOpt{now: time.Now().Add(-time.Minute)}), task.CodeStale},
		{"future timestamp", signedRequest(t, reqOpt{now: time.Now().Add(time.Minute)}), task.CodeStale},
		{"unregistered sender", signedRequest(t, reqOpt{key: strangerKey}), task.CodeUnregistered},
		{"validator without permit", signedRequest(t, reqOpt{key: noPermitKey}), task.CodeNoPermit},
		{"low stake", signedRequest(t, reqOpt{key: poorKey}), task.CodeLowStake},
		{"wrong miner", signedRequest(t, reqOpt{miner: richID}), task.CodeWrongMiner},
		{"wrong netuid", signedRequest(t, reqOpt{netuid: 9}), task.CodeWrongNetuid},
		{"bad version", signedRequest(t, reqOpt{mutate: func(e *task.Envelope) { e.Version = 99 }, resign: true}), task.CodeBadVersion},
		{"oversized envelope", oversized(0xffff, 0), task.CodeTooLarge},
		{"oversized body", oversized(task.EnvelopeSize, 1<<30), task.CodeTooLarge},
		{"short envelope length", oversized(10, 0), task.CodeMalformed},
		{"truncated", signedRequest(t, reqOpt{})[:100], task.CodeMalformed},
		{"garbage body, valid signature", signedRequest(t, reqOpt{body: garbageBody}), task.CodeMalformed},
		{"model mismatch", signedRequest(t, reqOpt{body: bodyBytes(mismatched)}), task.CodeModelMismatch},
		{"prompt outside vocabulary", signedRequest(t, reqOpt{body: bodyBytes(task.Body{PromptIDs: []uint32{1}, MaxTokens: 1, ModelHash: testModelHash})}), task.CodeOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := tm.Rejects(tc.want)
			got := rejectCode(t, exchange(t, c, tc.req))
			if got != tc.want {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			if tc.want != task.CodeOK && tm.Rejects(tc.want) != before+1 {
				t.Fatalf("metric for %v not counted", tc.want)
			}
		})
	}
	t.Run("replayed request", func(t *testing.T) {
		req := signedRequest(t, reqOpt{})
		if got := rejectCode(t, exchange(t, c, req)); got != task.CodeOK {
			t.Fatalf("first: %v", got)
		}
		if got := rejectCode(t, exchange(t, c, req)); got != task.CodeReplay {
			t.Fatalf("replay: %v", got)
		}
	})
	t.Run("batch-signed requests", func(t *testing.T) {
		es, b := batchEnvelopes(t, 5)
		send := func(e task.Envelope) task.Code { return rejectCode(t, exchange(t, c, task.AppendRequest(nil, &e, b))) }
		sibling := es[1]
		sibling.Proof.Path[1][0] ^= 1
		swapped := es[2]
		swapped.Proof.Index = es[3].Proof.Index
		for i, step := range []struct {
			e    task.Envelope
			want task.Code
		}{
			{sibling, task.CodeBadSignature}, {es[0], task.CodeOK}, {es[1], task.CodeOK},
			{swapped, task.CodeBadSignature}, {es[2], task.CodeOK}, {es[3], task.CodeOK},
			{es[0], task.CodeReplay}, {es[4], task.CodeOK},
		} {
			if got := send(step.e); got != step.want {
				t.Fatalf("step %d: %v, want %v", i, got, step.want)
			}
		}
	})
	t.Run("wrong pinned key", func(t *testing.T) {
		cl := task.NewClient(valKey, testNetuid, task.ClientOptions{DialTimeout: 2 * time.Second})
		defer cl.Close()
		_, err := cl.Query(context.Background(), tm.addr, richID, body(1))
		if err == nil || !strings.Contains(err.Error(), "pinned") {
			t.Fatalf("err = %v", err)
		}
		// The key registered with serve is the one pinned: another one
		// fails the handshake even with the right hotkey, the miner's own
		// key given explicitly passes.
		_, err = cl.QueryWith(context.Background(), tm.addr, minerID, body(1), task.QueryOptions{TLSKey: richID})
		if err == nil || !strings.Contains(err.Error(), "pinned") {
			t.Fatalf("registered TLS key not the miner's: err = %v", err)
		}
		res, err := cl.QueryWith(context.Background(), tm.addr, minerID, body(1), task.QueryOptions{TLSKey: minerID})
		if err != nil || res.Verified(minerID, res.Request) != nil {
			t.Fatalf("registered TLS key the miner's: %v", err)
		}
	})
	m := tm.Metrics()
	if m[`taobox_miner_rejects_total{code="replay"}`] != 2 || m[`taobox_miner_rejects_total{code="stale"}`] != 2 {
		t.Fatalf("metrics: %v", m)
	}
}

// The model is a real one: prompt ids outside its vocabulary are malformed.
func TestPromptCheckedAgainstModel(t *testing.T) {
	tm := startMiner(t, Config{Model: tinyModel(t)})
	c := rawConn(t, tm.addr)
	b := task.Body{PromptIDs: []uint32{1, 1 << 30}, MaxTokens: 1, ModelHash: testModelHash}
	if got := rejectCode(t, exchange(t, c, signedRequest(t, reqOpt{body: bodyBytes(b)}))); got != task.CodeMalformed {
		t.Fatalf("got %v", got)
	}
}

// Streams that open and never send are timed out and their slots freed.
func TestSilentStreamsTimeOut(t *testing.T) {
	const slots = 8
	tm := startMiner(t, Config{Limits: Limits{StreamsPerConn: slots, ReadTimeout: 300 * time.Millisecond}})
	c := rawConn(t, tm.addr)
	var wg sync.WaitGroup
	codes := make([]task.Code, slots)
	start := time.Now()
	for i := range slots {
		s, err := c.OpenStream()
		if err != nil {
			t.Fatal(err)
		}
		s.Write([]byte{0}) // one byte, then silence (the stream stays open)
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.SetReadDeadline(time.Now().Add(5 * time.Second))
			codes[i] = rejectCode(t, readFrames(t, s))
		}()
	}
	wg.Wait()
	for i, code := range codes {
		if code != task.CodeTimeout {
			t.Fatalf("stream %d: %v", i, code)
		}
	}
	t.Logf("%d silent streams timed out after %v", slots, time.Since(start))
	// The slots are free again: a real request on the same connection works.
	for range slots + 1 {
		if got := rejectCode(t, exchange(t, c, signedRequest(t, reqOpt{}))); got != task.CodeOK {
			t.Fatalf("after timeouts: %v", got)
		}
	}
}

// blockingAnswer emits one token, then waits for release (or ctx).
type blocker struct {
	started chan struct{}
	release chan struct{}
}

func newBlocker() *blocker {
	return &blocker{started: make(chan struct{}, 100), release: make(chan struct{})}
}

func (b *blocker) answer(ctx context.Context, body task.Body, emit func(task.Token) error) error {
	if err := emit(task.Token{ID: 1, LogProb: -1}); err != nil {
		return err
	}
	b.started <- struct{}{}
	select {
	case <-b.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	return emit(task.Token{ID: 2, LogProb: -1})
}

func waitMetric(t *testing.T, tm *testMiner, name string, want float64) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if tm.Metrics()[name] == want {
			return
		}
	}
	t.Fatalf("%s = %v, want %v", name, tm.Metrics()[name], want)
}

// A full queue answers busy with a retry-after, and a higher-stake request
// displaces the lowest-stake waiting one.
func TestQueueBusyAndStakeOrder(t *testing.T) {
	b := newBlocker()
	tm := startMiner(t, Config{Answer: b.answer, Limits: Limits{Queue: 2}})
	c := newClient(valKey, task.ClientOptions{})
	rich := newClient(richKey, task.ClientOptions{})
	defer c.Close()
	defer rich.Close()
	type out struct {
		res *task.Result
		err error
	}
	query := func(cl *task.Client) chan out {
		ch := make(chan out, 1)
		go func() {
			r, err := cl.Query(context.Background(), tm.addr, minerID, body(4))
			ch <- out{r, err}
		}()
		return ch
	}
	first := query(c)
	<-b.started // the worker holds the first
	q1, q2 := query(c), query(c)
	waitMetric(t, tm, "taobox_miner_queue_depth", 2)
	busy := <-query(c)
	if busy.err != nil || busy.res.Reject == nil || busy.res.Reject.Code != task.CodeBusy || busy.res.Reject.RetryAfterMs == 0 {
		t.Fatalf("full queue: %+v %v", busy.res, busy.err)
	}
	// A richer validator displaces one of the two waiting.
	r := query(rich)
	var displaced out
	select {
	case displaced = <-q2:
	case displaced = <-q1:
	case <-time.After(5 * time.Second):
		t.Fatal("nobody displaced")
	}
	if displaced.err != nil || displaced.res.Reject == nil || displaced.res.Reject.Code != task.CodeBusy {
		t.Fatalf("displaced: %+v %v", displaced.res, displaced.err)
	}
	close(b.release)
	for _, ch := range []chan out{first, r} {
		o := <-ch
		if o.err != nil || o.res.Verified(minerID, o.res.Request) != nil {
			t.Fatalf("%+v %v", o.res, o.err)
		}
	}
}

func TestRateAndConcurrencyLimits(t *testing.T) {
	t.Run("rate", func(t *testing.T) {
		// A frozen clock: the bucket cannot refill however slow the run.
		fixed := time.Now()
		clock := func() time.Time { return fixed }
		tm := startMiner(t, Config{Now: clock, Limits: Limits{Rate: 1, Burst: 2}})
		c := newClient(valKey, task.ClientOptions{Now: clock})
		defer c.Close()
		var codes []task.Code
		for range 3 {
			r, err := c.Query(context.Background(), tm.addr, minerID, body(1))
			if err != nil {
				t.Fatal(err)
			}
			code := task.CodeOK
			if r.Reject != nil {
				code = r.Reject.Code
				if r.Reject.RetryAfterMs == 0 {
					t.Fatal("no retry-after")
				}
			}
			codes = append(codes, code)
		}
		if codes[0] != task.CodeOK || codes[1] != task.CodeOK || codes[2] != task.CodeRateLimited {
			t.Fatalf("codes %v", codes)
		}
	})
	t.Run("concurrency", func(t *testing.T) {
		b := newBlocker()
		tm := startMiner(t, Config{Answer: b.answer, Limits: Limits{PerHotkey: 1}})
		c := newClient(valKey, task.ClientOptions{})
		defer c.Close()
		done := make(chan error, 1)
		go func() {
			_, err := c.Query(context.Background(), tm.addr, minerID, body(4))
			done <- err
		}()
		<-b.started
		r, err := c.Query(context.Background(), tm.addr, minerID, body(4))
		if err != nil || r.Reject == nil || r.Reject.Code != task.CodeTooManyStreams {
			t.Fatalf("%+v %v", r, err)
		}
		close(b.release)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
}

// A miner that dies mid-answer gives the client an error, not a hang:
// killed (its socket vanishes: detected by the idle timeout) or stopped
// (connections closed).
func TestMinerKilledMidAnswer(t *testing.T) {
	for _, kill := range []string{"socket closed", "serve stopped"} {
		t.Run(kill, func(t *testing.T) {
			b := newBlocker()
			tm := startMiner(t, Config{Answer: b.answer})
			c := newClient(valKey, task.ClientOptions{IdleTimeout: time.Second})
			defer c.Close()
			done := make(chan error, 1)
			var res *task.Result
			go func() {
				var err error
				res, err = c.Query(context.Background(), tm.addr, minerID, body(4))
				done <- err
			}()
			<-b.started
			start := time.Now()
			if kill == "socket closed" {
				tm.pc.Close()
			} else {
				tm.cancel()
			}
			select {
			case err := <-done:
				if err == nil && (res.Reject == nil || res.Reject.Code != task.CodeShuttingDown || kill != "serve stopped") {
					t.Fatalf("no error; result %+v", res)
				}
				if err == nil {
					err = res.Reject
				}
				t.Logf("client error after %v: %v", time.Since(start), err)
			case <-time.After(10 * time.Second):
				t.Fatal("client hangs")
			}
		})
	}
}

// Shutdown rejects what is queued with shutting-down.
func TestShutdownRejectsQueued(t *testing.T) {
	b := newBlocker()
	tm := startMiner(t, Config{Answer: b.answer})
	c := rawConn(t, tm.addr)
	req1, req2 := signedRequest(t, reqOpt{}), signedRequest(t, reqOpt{})
	s1, err := c.OpenStream()
	if err != nil {
		t.Fatal(err)
	}
	s1.Write(req1)
	s1.Close()
	<-b.started
	got := make(chan task.Code, 1)
	s2, err := c.OpenStream()
	if err != nil {
		t.Fatal(err)
	}
	s2.Write(req2)
	s2.Close()
	go func() {
		fs := readFrames(t, s2)
		code := task.CodeOK
		if len(fs) > 0 && fs[len(fs)-1].typ == task.FrameReject {
			r, _ := task.DecodeReject(fs[len(fs)-1].payload)
			code = r.Code
		}
		got <- code
	}()
	waitMetric(t, tm, "taobox_miner_queue_depth", 1)
	tm.cancel()
	if code := <-got; code != task.CodeShuttingDown {
		t.Fatalf("queued got %v", code)
	}
}

// Shutdown closes every connection with CONNECTION_CLOSE (an application
// error from the miner), idle ones and ones whose streams just got their
// shutting-down reject alike, so that no client waits for its idle timeout.
func TestShutdownClosesConnections(t *testing.T) {
	b := newBlocker()
	tm := startMiner(t, Config{Answer: b.answer})
	idle := rawConn(t, tm.addr)
	busy := rawConn(t, tm.addr)
	// Both accepted (a connection still in quic-go's accept queue at
	// shutdown is refused with CONNECTION_REFUSED instead).
	waitMetric(t, tm, "taobox_miner_connections_open", 2)
	s, err := busy.OpenStream()
	if err != nil {
		t.Fatal(err)
	}
	s.Write(signedRequest(t, reqOpt{}))
	s.Close()
	<-b.started
	frames := make(chan []frame, 1)
	go func() { frames <- readFrames(t, s) }()
	start := time.Now()
	tm.cancel()
	if code := rejectCode(t, <-frames); code != task.CodeShuttingDown {
		t.Fatalf("answer in flight got %v", code)
	}
	for name, c := range map[string]*quic.Conn{"idle": idle, "busy": busy} {
		select {
		case <-c.Context().Done():
		case <-time.After(3 * time.Second): // the client's idle timeout is 5 s
			t.Fatalf("%s connection not closed after %v", name, time.Since(start))
		}
		var ae *quic.ApplicationError
		if err := context.Cause(c.Context()); !errors.As(err, &ae) || !ae.Remote {
			t.Fatalf("%s connection ended with %v, want the miner's CONNECTION_CLOSE", name, err)
		}
	}
	t.Logf("connections closed %v after cancel", time.Since(start))
}

// The chain table is refreshed after ChainRefresh, so a newly registered
// validator gets in.
func TestSenderTableRefresh(t *testing.T) {
	ch := newFakeChain()
	now := time.Now()
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	tm := startMiner(t, Config{Chain: ch, Now: clock, Limits: Limits{ChainRefresh: time.Minute}})
	c := newClient(strangerKey, task.ClientOptions{Now: clock})
	defer c.Close()
	r, err := c.Query(context.Background(), tm.addr, minerID, body(1))
	if err != nil || r.Reject == nil || r.Reject.Code != task.CodeUnregistered {
		t.Fatalf("%+v %v", r, err)
	}
	_, strangerID := key(6)
	ch.mu.Lock()
	mg := *ch.mg
	mg.Neurons = append(append(mg.Neurons[:0:0], mg.Neurons...), mg.Neurons[1])
	mg.Neurons[len(mg.Neurons)-1].Hotkey = strangerID
	ch.mg = &mg
	calls := ch.n
	ch.mu.Unlock()
	if r, _ = c.Query(context.Background(), tm.addr, minerID, body(1)); r.Reject == nil {
		t.Fatal("table refreshed before ChainRefresh")
	}
	mu.Lock()
	now = now.Add(2 * time.Minute)
	mu.Unlock()
	r, err = c.Query(context.Background(), tm.addr, minerID, body(1))
	if err != nil || r.Reject != nil {
		t.Fatalf("%+v %v", r.Reject, err)
	}
	ch.mu.Lock()
	n := ch.n
	ch.mu.Unlock()
	if n != calls+1 {
		t.Fatalf("metagraph fetched %d times", n-calls)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	for name, cfg := range map[string]Config{
		"no key":   {Chain: newFakeChain(), Answer: fixedAnswer(1)},
		"no chain": {Key: minerKey, Answer: fixedAnswer(1)},
		"no model": {Key: minerKey, Chain: newFakeChain()},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestReplayCache(t *testing.T) {
	c := newReplayCache(2, 1)
	k := func(b byte) replayKey { return replayKey{v: types.AccountID{b}, nonce: [16]byte{b}} }
	want := func(got, want replayResult) {
		t.Helper()
		if got != want {
			t.Fatalf("add: %d, want %d", got, want)
		}
	}
	want(c.add(k(1), 100, 0), replayAdded)
	want(c.add(k(1), 100, 50), replaySeen)
	want(c.add(k(2), 200, 0), replayAdded)
	want(c.add(k(3), 300, 50), replayFull)
	want(c.add(k(3), 300, 150), replayAdded) // k(1) expired
	want(c.add(k(1), 400, 150), replayFull)  // not seen (k(1) expired), but k(2) and k(3) fill it
	c.forget(k(3), 300)                      // forget frees the entry
	want(c.add(k(1), 400, 150), replayAdded) // an expired nonce is new again
	want(c.add(k(1), 400, 160), replaySeen)
}

// The cache's clock never goes back: once a request with a later clock
// has pruned a nonce, a replay read at an earlier clock (its envelope still
// inside the window by that clock) is stale, not admitted.
func TestReplayCacheClockNeverGoesBack(t *testing.T) {
	c := newReplayCache(16, 1)
	k := replayKey{nonce: [16]byte{1}}
	if r := c.add(k, 10_000, 5_000); r != replayAdded {
		t.Fatal(r)
	}
	c.add(replayKey{v: types.AccountID{9}, nonce: [16]byte{2}}, 20_001, 10_001) // prunes k
	if r := c.add(k, 10_000, 10_000); r != replayStale {
		t.Fatalf("replay after its nonce was pruned: %d, want stale", r)
	}
}

// One validator holds at most its share of the cache: past that it is
// refused, and the others keep room.
func TestReplayCacheQuota(t *testing.T) {
	c := newReplayCache(64, 4)
	hog := types.AccountID{1}
	n := 0
	for i := range 64 {
		if c.add(replayKey{v: hog, nonce: [16]byte{byte(i)}}, 1000, 0) == replayAdded {
			n++
		}
	}
	if n != 4 {
		t.Fatalf("one validator got %d entries of 64, want 4", n)
	}
	if r := c.add(replayKey{v: types.AccountID{2}, nonce: [16]byte{1}}, 1000, 0); r != replayAdded {
		t.Fatalf("another validator: %d", r)
	}
}

// Nobody listening: the client fails within its dial timeout.
func TestQueryNobodyListening(t *testing.T) {
	c := newClient(valKey, task.ClientOptions{DialTimeout: 300 * time.Millisecond})
	defer c.Close()
	start := time.Now()
	if _, err := c.Query(context.Background(), "127.0.0.1:9", minerID, body(1)); err == nil {
		t.Fatal("no error")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("took %v", d)
	}
	c.Close()
	if _, err := c.Query(context.Background(), "127.0.0.1:9", minerID, body(1)); !errors.Is(err, task.ErrClosed) {
		t.Fatalf("after close: %v", err)
	}
}

// One permitted validator far over its rate, with timestamps at the future
// edge of the window (so each nonce would live two windows), does not fill
// the replay cache for the others: refused requests give their nonces
// back, and no validator holds more than its share.
func TestReplayCacheNotFilledByOneSender(t *testing.T) {
	fixed := time.Now() // a frozen clock: the bucket cannot refill however slow the run
	tm := startMiner(t, Config{Now: func() time.Time { return fixed }, Answer: fixedAnswer(1), Limits: Limits{ReplayCache: 32, Rate: 1, Burst: 1}})
	c := rawConn(t, tm.addr)
	codes := map[task.Code]int{}
	for range 40 {
		codes[rejectCode(t, exchange(t, c, signedRequest(t, reqOpt{key: valKey, now: fixed.Add(9 * time.Second)})))]++
	}
	if codes[task.CodeOK] != 1 || codes[task.CodeRateLimited] != 39 {
		t.Fatalf("the flooding validator got %v, want 1 ok and 39 rate-limited", codes)
	}
	if n := tm.replay.len(); n > 2 {
		t.Fatalf("%d replay entries after one admitted request", n)
	}
	if got := rejectCode(t, exchange(t, rawConn(t, tm.addr), signedRequest(t, reqOpt{key: richKey, now: fixed}))); got != task.CodeOK {
		t.Fatalf("another validator got %v", got)
	}
}

// Connections that complete the handshake but never get a request
// admitted, kept alive by PINGs, are closed after UnservedTimeout, so they
// cannot hold MaxConns against a validator that connects later.
func TestUnservedConnectionsClosed(t *testing.T) {
	tm := startMiner(t, Config{Answer: fixedAnswer(1), Limits: Limits{MaxConns: 4, UnservedTimeout: 300 * time.Millisecond, NoInitialFilter: true}})
	var idle []*quic.Conn
	for range 4 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		c, err := quic.DialAddr(ctx, tm.addr, task.ClientTLS(minerID), &quic.Config{MaxIdleTimeout: 5 * time.Second, KeepAlivePeriod: 100 * time.Millisecond})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		defer c.CloseWithError(0, "")
		idle = append(idle, c)
	}
	for _, c := range idle {
		select {
		case <-c.Context().Done():
		case <-time.After(5 * time.Second):
			t.Fatal("an idle unserved connection is still open")
		}
		var ae *quic.ApplicationError
		if err := context.Cause(c.Context()); !errors.As(err, &ae) || ae.ErrorCode != task.CloseUnserved {
			t.Fatalf("closed with %v, want application error %d", err, task.CloseUnserved)
		}
	}
	cl := newClient(valKey, task.ClientOptions{})
	defer cl.Close()
	if err := legitQuery(cl, tm.addr)(); err != nil {
		t.Fatalf("validator after the idle connections: %v", err)
	}
	if n := tm.Metrics()["taobox_miner_connections_closed_unserved_total"]; n != 4 {
		t.Fatalf("closed-unserved counter %v, want 4", n)
	}
	// The validator's connection, served, outlives UnservedTimeout.
	time.Sleep(600 * time.Millisecond)
	if err := legitQuery(cl, tm.addr)(); err != nil {
		t.Fatal(err)
	}
	if n := tm.Metrics()["taobox_miner_connections_closed_unserved_total"]; n != 4 {
		t.Fatalf("closed-unserved counter %v after a served connection idled, want 4", n)
	}
}

// A client that never reads its answer (its flow-control window full) has
// the stream reset after WriteTimeout instead of holding the miner's
// writer and the buffered answer for ever.
func TestUnreadAnswerCancelled(t *testing.T) {
	tm := startMiner(t, Config{Answer: fixedAnswer(4096), Limits: Limits{WriteTimeout: 300 * time.Millisecond}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := quic.DialAddr(ctx, tm.addr, task.ClientTLS(minerID), &quic.Config{
		MaxIdleTimeout: 5 * time.Second, KeepAlivePeriod: time.Second,
		InitialStreamReceiveWindow: 1024, MaxStreamReceiveWindow: 1024,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseWithError(0, "")
	s, err := c.OpenStreamSync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s.Write(signedRequest(t, reqOpt{key: valKey, body: bodyBytes(body(4096))}))
	s.Close()
	time.Sleep(time.Second) // read nothing: the miner's write blocks on flow control
	_, err = io.ReadAll(s)
	var se *quic.StreamError
	if !errors.As(err, &se) || !se.Remote {
		t.Fatalf("reading the unread answer: %v, want the miner's stream reset", err)
	}
}

// replayShare: a sixteenth of the cache, or what the rate limit lets one
// validator hold live, up to the whole cache.
func TestReplayShare(t *testing.T) {
	for _, c := range []struct {
		l    Limits
		want int
	}{
		{Limits{}, 4096}, // defaults: 100 + 50·20 = 1,100 < 65,536/16
		{Limits{Rate: 1000, Burst: 100}, 20100},
		{Limits{Rate: 1e6, Burst: 1e6}, 1 << 16},
		{Limits{ReplayCache: 32, Rate: 1, Burst: 1}, 21},
	} {
		c.l.defaults()
		if got := replayShare(&c.l); got != c.want {
			t.Errorf("%+v: share %d, want %d", c.l, got, c.want)
		}
	}
}

// Requests refused after the replay step give their nonces back; the
// FIFO those nonces went through stays bounded by the cache, however many
// are refused.
func TestReplayCacheForgottenBounded(t *testing.T) {
	c := newReplayCache(64, 64)
	for i := range 100_000 {
		k := replayKey{nonce: [16]byte{byte(i), byte(i >> 8), byte(i >> 16)}}
		now := int64(i) / 10 // 10,000 a second
		if r := c.add(k, now+20_000, now); r != replayAdded {
			t.Fatalf("add %d: %d", i, r)
		}
		c.forget(k, now+20_000)
	}
	if n := len(c.fifo) - c.head; n > 2*64 {
		t.Fatalf("FIFO holds %d entries for a cache of 64", n)
	}
	if n := c.len(); n != 0 {
		t.Fatalf("%d entries left", n)
	}
}

// 64 concurrent queries over one connection: envelopes and final frames go
// out batch-signed when they meet at a signer (docs/task-protocol.md §8),
// and every answer verifies against its request; the miner's signature
// count and metric add up.
func TestConcurrentQueriesBatchSigned(t *testing.T) {
	tm := startMiner(t, Config{Answer: fixedAnswer(1), Limits: Limits{Rate: 1e6, Burst: 1e6, PerHotkey: 1 << 10, Queue: 1024}})
	c := newClient(valKey, task.ClientOptions{})
	defer c.Close()
	const n = 640
	if _, _, err := runLoad(64, n, legitQuery(c, tm.addr)); err != nil {
		t.Fatal(err)
	}
	sigs, finals := tm.signer.Stats()
	esigs, envs := c.SignStats()
	t.Logf("%d final frames in %d signatures, %d envelopes in %d signatures", finals, sigs, envs, esigs)
	if finals != n || sigs == 0 || sigs > finals || envs != n || esigs == 0 || esigs > envs {
		t.Fatalf("signer stats: %d/%d finals, %d/%d envelopes", sigs, finals, esigs, envs)
	}
	if got := tm.Metrics()["taobox_miner_final_signatures_total"]; got != float64(sigs) {
		t.Fatalf("metric %v, want %d", got, sigs)
	}
}

// Peers from before batch signatures (ALPN taobox-task/1 only) keep
// working both ways: a miner signs every final frame alone for an old
// validator however many answers finish together, and a client signs
// every envelope alone for an old miner; new peers negotiate
// taobox-task/2.
func TestBatchSignaturesNegotiated(t *testing.T) {
	const n = 48
	tm := startMiner(t, Config{Answer: fixedAnswer(1), Limits: Limits{Rate: 1e6, Burst: 1e6, PerHotkey: 1 << 10, Queue: 1024, BadRequests: 1000}})
	old := task.ClientTLS(minerID)
	old.NextProtos = []string{task.ALPN}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := quic.DialAddr(ctx, tm.addr, old, &quic.Config{MaxIdleTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseWithError(0, "")
	if p := c.ConnectionState().TLS.NegotiatedProtocol; p != task.ALPN {
		t.Fatalf("an old validator negotiated %q", p)
	}
	// taobox-task/1 carries no batch proofs.
	es, bb := batchEnvelopes(t, 2)
	if code := rejectCode(t, exchange(t, c, task.AppendRequest(nil, &es[0], bb))); code != task.CodeMalformed {
		t.Fatalf("a batch-signed envelope on a taobox-task/1 connection: %v", code)
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			req := signedRequest(t, reqOpt{})
			e, _, _, _ := task.ReadRequest(bytes.NewReader(req))
			fs := exchange(t, c, req)
			if len(fs) == 0 || fs[len(fs)-1].typ != task.FrameFinal {
				errs <- fmt.Errorf("no final frame: %v", fs)
				return
			}
			f, err := task.DecodeFinal(fs[len(fs)-1].payload)
			if err != nil || f.Proof.Depth != 0 || len(fs[len(fs)-1].payload) != 100 {
				errs <- fmt.Errorf("final frame for an old validator: %+v (%d bytes), %v", f.Proof, len(fs[len(fs)-1].payload), err)
				return
			}
			tok, _ := task.DecodeToken(fs[0].payload)
			if err := f.Verify(minerID, e.Hash(), []task.Token{tok}); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	oldMiner := startMinerWith(t, Config{Answer: fixedAnswer(1), Limits: Limits{Rate: 1e6, Burst: 1e6, PerHotkey: 1 << 10, Queue: 1024}},
		func(m *Miner) { m.tls.NextProtos = []string{task.ALPN} })
	cl := newClient(valKey, task.ClientOptions{})
	defer cl.Close()
	if _, _, err := runLoad(16, n, legitQuery(cl, oldMiner.addr)); err != nil {
		t.Fatal(err)
	}
	if sigs, envs := cl.SignStats(); sigs != n || envs != n {
		t.Fatalf("the client signed %d envelopes in %d signatures for an old miner, want each alone", envs, sigs)
	}
	if sigs, finals := oldMiner.signer.Stats(); sigs != n || finals != n {
		t.Fatalf("%d final frames in %d signatures on old-protocol connections, want each alone", finals, sigs)
	}
	if sigs, finals := tm.signer.Stats(); sigs != n || finals != n {
		t.Fatalf("%d final frames in %d signatures for an old validator, want each alone", finals, sigs)
	}
}

// A uid that registered another miner's address and TLS key: the client
// sends its tasks on a connection of their own, so the real miner's
// refusals of them (wrong-miner, a sender fault) close that connection,
// never the one the real miner's answers use.
func TestImpostorTasksOwnConnection(t *testing.T) {
	const limit = 4
	b := newBlocker()
	tm := startMiner(t, Config{Answer: b.answer, Limits: Limits{BadRequests: limit}})
	c := newClient(valKey, task.ClientOptions{})
	defer c.Close()
	honest := make(chan error, 1)
	go func() {
		res, err := c.Query(context.Background(), tm.addr, minerID, body(2))
		if err == nil {
			err = res.Verified(minerID, res.Request)
		}
		honest <- err
	}()
	<-b.started
	for i := range limit {
		res, err := c.QueryWith(context.Background(), tm.addr, richID, body(1), task.QueryOptions{TLSKey: minerID})
		if err == nil && (res.Reject == nil || res.Reject.Code != task.CodeWrongMiner) {
			t.Fatalf("impostor task %d: %+v", i, res)
		}
	}
	close(b.release)
	if err := <-honest; err != nil {
		t.Fatalf("the real miner's answer: %v", err)
	}
}
