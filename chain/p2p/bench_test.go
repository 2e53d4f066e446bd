package p2p

// Benchmarks: our framing and limits over a real loopback QUIC connection,
// next to a bare quic-go baseline with the same TLS and quic.Config, so the
// overhead of this package shows side by side:
//
//	go test -run '^$' -bench . ./chain/p2p

import (
	"context"
	"crypto/rand"
	"io"
	"net"
	"sync/atomic"
	"testing"

	"github.com/quic-go/quic-go"

	"taobox/chain/types"
)

const mib = 1 << 20

// benchHandler answers ReqHeaders with 64 bytes and ReqBlocks with a shared
// 1 MiB slice; gossip is counted.
type benchHandler struct {
	small, big []byte
	got        chan struct{}
}

func (bh *benchHandler) Gossip(PeerID, types.MsgType, []byte) error {
	bh.got <- struct{}{}
	return nil
}

func (bh *benchHandler) Serve(_ context.Context, _ PeerID, t types.MsgType, _ []byte) ([]byte, error) {
	if t == types.ReqBlocks {
		return bh.big, nil
	}
	return bh.small, nil
}

func (bh *benchHandler) Status() Status { return Status{} }

func benchPair(b *testing.B) (*Host, *Host, *benchHandler) { return benchPair2(b) }

func benchPair2(b testing.TB) (*Host, *Host, *benchHandler) {
	b.Helper()
	bh := &benchHandler{small: make([]byte, 64), big: make([]byte, mib), got: make(chan struct{}, 1024)}
	mk := func() *Host {
		_, key, _ := types.GenerateKey(rand.Reader)
		h, err := New(Config{
			Key: key, ChainID: testChain, Listen: "127.0.0.1:0", Logger: testLogger(),
			GossipRate: 1e12, GossipBurst: 1 << 30, RequestRate: 1e12, RequestBurst: 1 << 30,
			ByteRate: 1e15, ByteBurst: 1 << 40, ServeConcurrency: 64,
		}, bh)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { h.Close() })
		h.Start(context.Background())
		return h
	}
	x, y := mk(), mk()
	if _, err := x.Connect(context.Background(), addrOf(y)); err != nil {
		b.Fatal(err)
	}
	return x, y, bh
}

// BenchmarkRequestRoundTrip: 64-byte request, 64-byte response, one stream
// each, serial.
func BenchmarkRequestRoundTrip(b *testing.B) {
	x, y, _ := benchPair(b)
	req := make([]byte, 64)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := x.Request(ctx, y.ID(), types.ReqHeaders, req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStreamThroughput: a 1 MiB response per request (the sync path:
// blocks, chunks), serial.
func BenchmarkStreamThroughput(b *testing.B) {
	x, y, _ := benchPair(b)
	req := make([]byte, 8)
	ctx := context.Background()
	b.SetBytes(mib)
	for b.Loop() {
		resp, err := x.Request(ctx, y.ID(), types.ReqBlocks, req)
		if err != nil || len(resp) != mib {
			b.Fatal(len(resp), err)
		}
	}
	reportLoss(b, y.peer(x.ID()).conn)
}

// BenchmarkGossipThroughput: 1 MiB gossip messages, up to 32 in flight.
func BenchmarkGossipThroughput(b *testing.B) {
	x, y, bh := benchPair(b)
	msg := make([]byte, mib)
	b.SetBytes(mib)
	inFlight := 0
	for b.Loop() {
		for inFlight >= 32 {
			<-bh.got
			inFlight--
		}
		for x.Send(y.ID(), types.MsgBlock, msg) != nil { // queue full: wait for one
			<-bh.got
			inFlight--
		}
		inFlight++
	}
	for ; inFlight > 0; inFlight-- {
		<-bh.got
	}
	reportLoss(b, x.peer(y.ID()).conn)
}

// bareQUIC is the baseline: one connection between two transports with
// the host's TLS and quic.Config, and a server that answers every stream
// with reply (after reading the request to EOF).
type bareQUIC struct {
	conn   *quic.Conn
	server chan *quic.Conn
}

func newBareQUIC(b *testing.B, reply []byte) *bareQUIC {
	b.Helper()
	_, ks, _ := types.GenerateKey(rand.Reader)
	_, kc, _ := types.GenerateKey(rand.Reader)
	cs, _ := certificate(ks)
	cc, _ := certificate(kc)
	qc := quicConfig(nil)
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
	ln, err := st.Listen(serverTLS(cs, func(PeerID) error { return nil }, func(context.Context) error { return nil }), qc)
	if err != nil {
		b.Fatal(err)
	}
	server := make(chan *quic.Conn, 1)
	go func() {
		for {
			c, err := ln.Accept(context.Background())
			if err != nil {
				return
			}
			server <- c
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
	var verr atomic.Pointer[error]
	conn, err := ct.Dial(context.Background(), ln.Addr(), clientTLS(cc, nil, func(PeerID) error { return nil }, &verr), qc)
	if err != nil {
		b.Fatal(err)
	}
	return &bareQUIC{conn: conn, server: server}
}

func (q *bareQUIC) roundTrip(b *testing.B, req []byte, want int) {
	s, err := q.conn.OpenStreamSync(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	s.Write(req)
	s.Close()
	got, err := io.ReadAll(s)
	if err != nil || len(got) != want {
		b.Fatal(len(got), err)
	}
}

// BenchmarkBaselineQUICRoundTrip: bare quic-go, 64 bytes each way, one
// stream per round trip (compare BenchmarkRequestRoundTrip).
func BenchmarkBaselineQUICRoundTrip(b *testing.B) {
	q := newBareQUIC(b, make([]byte, 64))
	req := make([]byte, 64)
	b.ReportAllocs()
	for b.Loop() {
		q.roundTrip(b, req, 64)
	}
}

// BenchmarkBaselineQUICStreamThroughput: bare quic-go, 1 MiB response per
// stream (compare BenchmarkStreamThroughput).
func BenchmarkBaselineQUICStreamThroughput(b *testing.B) {
	q := newBareQUIC(b, make([]byte, mib))
	req := make([]byte, 8)
	b.SetBytes(mib)
	for b.Loop() {
		q.roundTrip(b, req, mib)
	}
	reportLoss(b, <-q.server)
}

// reportLoss reports the packets the sending side of c declared lost, per
// operation: loopback UDP drops when a socket buffer overflows (this
// kernel caps them at 4 MiB, below quic-go's 7 MiB wish), and each loss
// costs a recovery stall, so throughput varies with it.
func reportLoss(b *testing.B, c *quic.Conn) {
	b.ReportMetric(float64(c.ConnectionStats().PacketsLost)/float64(b.N), "lost-pkts/op")
}
