package miner

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"taobox/task"
)

// runLoad runs n calls of fn over conc goroutines and returns each call's
// latency and the wall time.
func runLoad(conc, n int, fn func() error) ([]time.Duration, time.Duration, error) {
	lat := make([]time.Duration, n)
	var next atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	start := time.Now()
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				t0 := time.Now()
				if err := fn(); err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				lat[i] = time.Since(t0)
			}
		}()
	}
	wg.Wait()
	if e, _ := firstErr.Load().(error); e != nil {
		return nil, 0, e
	}
	return lat, time.Since(start), nil
}

// legitQuery is one 1-token task that must verify.
func legitQuery(c *task.Client, addr string) func() error {
	return func() error {
		r, err := c.Query(context.Background(), addr, minerID, body(1))
		if err != nil {
			return err
		}
		return r.Verified(minerID, r.Request)
	}
}

// junkFlood opens n connections (conc at a time) that complete the
// handshake and then misbehave: garbage on a stream, a silent stream, or
// nothing at all; plus raw non-QUIC datagrams. It returns when all are done.
func junkFlood(t testing.TB, addr string, n, conc int) (time.Duration, int) {
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	tr := &quic.Transport{Conn: pc}
	defer tr.Close()
	ua, _ := net.ResolveUDPAddr("udp", addr)
	var failed atomic.Int64
	start := time.Now()
	_, _, _ = runLoad(conc, n, func() error {
		i := mrand.Int()
		if i%8 == 0 { // raw junk datagrams
			junk := make([]byte, 1200)
			rand.Read(junk)
			pc.WriteTo(junk, ua)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, err := tr.Dial(ctx, ua, task.ClientTLS(minerID), &quic.Config{MaxIdleTimeout: 5 * time.Second})
		if err != nil {
			failed.Add(1)
			return nil
		}
		defer c.CloseWithError(0, "")
		switch i % 3 {
		case 0: // garbage request
			s, err := c.OpenStreamSync(ctx)
			if err != nil {
				return nil
			}
			junk := make([]byte, 300)
			rand.Read(junk)
			s.Write(junk)
			s.Close()
			s.SetReadDeadline(time.Now().Add(3 * time.Second))
			io.Copy(io.Discard, s)
		case 1: // oversized length prefix
			s, err := c.OpenStreamSync(ctx)
			if err != nil {
				return nil
			}
			s.Write([]byte{0xff, 0xff})
			s.SetReadDeadline(time.Now().Add(3 * time.Second))
			io.Copy(io.Discard, s)
		case 2: // handshake, then hang up
		}
		return nil
	})
	return time.Since(start), int(failed.Load())
}

// junkStreams sends n bad requests over a few established connections
// (conc at a time): forged signatures claiming a registered validator (each
// costs the miner a signature check), garbage, oversized prefixes, stale
// and unregistered senders. It returns the rejection codes seen.
func junkStreams(t testing.TB, conns []*quic.Conn, n, conc int) (time.Duration, map[task.Code]int) {
	var forged [][]byte
	for range 64 {
		forged = append(forged, signedRequest(t, reqOpt{mutate: func(e *task.Envelope) { e.Sig[0] ^= 0x55 }}))
	}
	kinds := [][]byte{
		signedRequest(t, reqOpt{now: time.Now().Add(-time.Hour)}),
		signedRequest(t, reqOpt{key: strangerKey}),
		{0xff, 0xff},
		bytes.Repeat([]byte{0}, 300),
	}
	var mu sync.Mutex
	codes := map[task.Code]int{}
	var next atomic.Int64
	start := time.Now()
	runLoad(conc, n, func() error {
		i := int(next.Add(1))
		req := forged[i%len(forged)]
		if i%2 == 1 {
			req = kinds[(i/2)%len(kinds)]
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s, err := conns[i%len(conns)].OpenStreamSync(ctx)
		if err != nil {
			return nil
		}
		s.SetDeadline(time.Now().Add(5 * time.Second))
		s.Write(req)
		s.Close()
		code := task.Code(255)
		fr := task.NewFrameReader(s)
		if typ, p, err := fr.Next(); err == nil && typ == task.FrameReject {
			if r, err := task.DecodeReject(p); err == nil {
				code = r.Code
			}
		}
		mu.Lock()
		codes[code]++
		mu.Unlock()
		return nil
	})
	return time.Since(start), codes
}

// Under a flood of junk connections a legitimate validator keeps being
// served; its latency is logged beside the quiet case. Only a generous
// bound is asserted (timings on a shared 2-core VM are noisy).
func TestJunkFlood(t *testing.T) {
	junk := 1000
	if os.Getenv("TAOBOX_LONG") != "" {
		junk = 10000
	}
	tm := startMiner(t, Config{Answer: fixedAnswer(1), Limits: Limits{Rate: 1e6, Burst: 1e6}})
	c := newClient(valKey, task.ClientOptions{})
	defer c.Close()
	if err := legitQuery(c, tm.addr)(); err != nil { // warm the connection
		t.Fatal(err)
	}
	quiet, _, err := runLoad(1, 300, legitQuery(c, tm.addr))
	if err != nil {
		t.Fatal(err)
	}
	var flood []time.Duration
	var mu sync.Mutex
	stop := make(chan struct{})
	legitDone := make(chan error, 1)
	go func() {
		q := legitQuery(c, tm.addr)
		for {
			select {
			case <-stop:
				legitDone <- nil
				return
			default:
			}
			t0 := time.Now()
			if err := q(); err != nil {
				legitDone <- err
				return
			}
			mu.Lock()
			flood = append(flood, time.Since(t0))
			mu.Unlock()
			time.Sleep(2 * time.Millisecond)
		}
	}()
	var conns []*quic.Conn
	for range 8 {
		conns = append(conns, rawConn(t, tm.addr))
	}
	var streamsTook time.Duration
	var codes map[task.Code]int
	var fw sync.WaitGroup
	fw.Add(1)
	go func() { defer fw.Done(); streamsTook, codes = junkStreams(t, conns, junk, 32) }()
	took, failed := junkFlood(t, tm.addr, junk, 32)
	fw.Wait()
	close(stop)
	if err := <-legitDone; err != nil {
		t.Fatalf("legit query failed under flood: %v", err)
	}
	qp50, qp99 := percentile(quiet, 0.5), percentile(quiet, 0.99)
	fp50, fp99 := percentile(flood, 0.5), percentile(flood, 0.99)
	t.Logf("junk connections: %d in %v (%d failed to connect); legit quiet: n=%d p50=%v p99=%v; under flood: n=%d p50=%v p99=%v (p99 ratio %.2f)",
		junk, took.Round(time.Millisecond), failed, len(quiet), qp50, qp99, len(flood), fp50, fp99, float64(fp99)/float64(qp99))
	t.Logf("junk streams: %d in %v over %d connections, codes %v", junk, streamsTook.Round(time.Millisecond), len(conns), codes)
	if codes[task.CodeOK] != 0 || codes[255] != 0 {
		t.Errorf("junk streams answered without a reject: %v", codes)
	}
	m := tm.Metrics()
	t.Logf("miner: handshakes refused %v, connections %v, malformed %v, too-large %v, timeout %v",
		m["taobox_miner_handshakes_refused_total"], m["taobox_miner_connections_total"], m[`taobox_miner_rejects_total{code="malformed"}`],
		m[`taobox_miner_rejects_total{code="too-large"}`], m[`taobox_miner_rejects_total{code="timeout"}`])
	if len(flood) < 10 {
		t.Fatalf("only %d legit queries completed during the flood", len(flood))
	}
	if fp99 > 2*time.Second {
		t.Fatalf("legit p99 under flood %v", fp99)
	}
}

// echoServer is a bare quic-go server that reads a request to EOF and
// answers a fixed reply (the size of a 1-token answer), for comparison.
func echoServer(t testing.TB, reply int) (string, func()) {
	tlsConf, err := task.ServerTLS(minerKey)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := quic.ListenAddr("127.0.0.1:0", tlsConf, &quic.Config{MaxIncomingStreams: 256})
	if err != nil {
		t.Fatal(err)
	}
	resp := make([]byte, reply)
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
						s.Write(resp)
						s.Close()
					}()
				}
			}()
		}
	}()
	return ln.Addr().String(), func() { ln.Close() }
}

func echoClient(t testing.TB, addr string, req []byte) (func() error, func()) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := quic.DialAddr(ctx, addr, task.ClientTLS(minerID), &quic.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return func() error {
		s, err := c.OpenStreamSync(context.Background())
		if err != nil {
			return err
		}
		s.Write(req)
		s.Close()
		_, err = io.Copy(io.Discard, s)
		return err
	}, func() { c.CloseWithError(0, "") }
}

// BenchmarkTasks compares 1-token tasks (signed, admitted, answered by a
// model-free answer, final frame verified by the client) with a bare
// quic-go request/response of the same sizes, at 1, 16 and 256 concurrent
// requests. Metrics: tasks/s, p50 and p99 latency.
func BenchmarkTasks(b *testing.B) {
	reqSize := len(signedRequest(b, reqOpt{}))
	replySize := len(task.AppendTokenFrame(nil, &task.Token{ID: 7, LogProb: -0.5})) + 3 + 100
	for _, conc := range []int{1, 16, 256} {
		b.Run(fmt.Sprintf("echo/conc=%d", conc), func(b *testing.B) {
			addr, stop := echoServer(b, replySize)
			defer stop()
			fn, closeC := echoClient(b, addr, make([]byte, reqSize))
			defer closeC()
			report(b, conc, fn)
		})
		b.Run(fmt.Sprintf("task/conc=%d", conc), func(b *testing.B) {
			tm := startMiner(b, Config{Answer: fixedAnswer(1), Limits: Limits{Rate: 1e9, Burst: 1 << 30, PerHotkey: 1 << 20, Queue: 4096}})
			c := newClient(valKey, task.ClientOptions{})
			defer c.Close()
			report(b, conc, legitQuery(c, tm.addr))
		})
		b.Run(fmt.Sprintf("task-noverify/conc=%d", conc), func(b *testing.B) {
			tm := startMiner(b, Config{Answer: fixedAnswer(1), Limits: Limits{Rate: 1e9, Burst: 1 << 30, PerHotkey: 1 << 20, Queue: 4096}})
			c := newClient(valKey, task.ClientOptions{})
			defer c.Close()
			report(b, conc, func() error {
				_, err := c.Query(context.Background(), tm.addr, minerID, body(1))
				return err
			})
		})
		b.Run(fmt.Sprintf("tiny-model/conc=%d", conc), func(b *testing.B) {
			tm := startMiner(b, Config{Model: tinyModel(b), Limits: Limits{Rate: 1e9, Burst: 1 << 30, PerHotkey: 1 << 20, Queue: 4096}})
			c := newClient(valKey, task.ClientOptions{})
			defer c.Close()
			report(b, conc, legitQuery(c, tm.addr))
		})
	}
}

func report(b *testing.B, conc int, fn func() error) {
	for range conc { // warm up
		if err := fn(); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	lat, wall, err := runLoad(conc, max(b.N, conc), fn)
	if err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	b.ReportMetric(float64(len(lat))/wall.Seconds(), "tasks/s")
	b.ReportMetric(float64(percentile(lat, 0.5).Microseconds()), "p50-µs")
	b.ReportMetric(float64(percentile(lat, 0.99).Microseconds()), "p99-µs")
}
