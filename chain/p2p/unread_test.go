package p2p

import (
	"encoding/binary"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/quic-go/quic-go"

	"taobox/chain/types"
)

// A peer that asks for big responses and never reads them pins no more
// than MaxPendingPerPeer bytes of them on the server: requests past the
// cap are not served, and the responses being written are cancelled when
// ResponseWriteTimeout passes; each refusal is counted and the requester
// sees its streams reset.
func TestUnreadResponsesBounded(t *testing.T) {
	const (
		perPeer  = 2 << 20
		requests = 12
		// testHandler answers ReqBlocks with len(payload) KiB. 1 MiB is
		// more than the requester's initial flow-control windows (512 KiB
		// per stream, 768 KiB per connection), which only grow as it
		// reads: no answer can be written whole.
		respSize = 1 << 20
	)
	b, _ := newHost(t, func(c *Config) {
		c.MaxPendingPerPeer = perPeer
		// long enough that all twelve requests arrive while the first
		// answers are pending (so some are refused at the cap)
		c.ResponseWriteTimeout = 2 * time.Second
	})
	a, _ := newHost(t, nil)
	connect(t, a, b)
	p := a.peer(b.ID())
	frame := make([]byte, FrameHeaderSize+respSize>>10)
	frame[0] = byte(types.ReqBlocks)
	binary.BigEndian.PutUint32(frame[1:], uint32(respSize>>10))
	var streams []*quic.Stream
	for range requests {
		s, err := p.conn.OpenStreamSync(ctx20(t))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Write(frame); err != nil {
			t.Fatal(err)
		}
		s.Close()
		streams = append(streams, s) // never read (until the end)
	}
	// Every request ends in a cancelled stream: refused at the cap, or
	// its write timed out. Nothing stays pending.
	waitFor(t, "every unread response cancelled", func() bool {
		st := b.Stats()
		return st.Rejects["response-unread"]+st.Rejects["response-timeout"] == requests && st.PendingResponseBytes == 0
	})
	st := b.Stats()
	if st.PeakPendingBytes > perPeer {
		t.Errorf("peak pending response bytes %d > MaxPendingPerPeer %d", st.PeakPendingBytes, perPeer)
	}
	if st.PeakPendingBytes < respSize || st.Rejects["response-unread"] == 0 || st.Rejects["response-timeout"] == 0 {
		t.Errorf("peak %d, rejects %v: want at least one response pending, some refused at the cap and some timed out", st.PeakPendingBytes, st.Rejects)
	}
	for i, s := range streams {
		_, err := io.ReadAll(s)
		var se *quic.StreamError
		if !errors.As(err, &se) || se.ErrorCode != streamUnread {
			t.Errorf("stream %d: read err %v, want a reset with code %d", i, err, streamUnread)
		}
	}
	// The refusals are exported.
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(b.Collector())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var exported float64
	for _, mf := range mfs {
		if mf.GetName() != "taobox_p2p_rejects_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" && (l.GetValue() == "response-unread" || l.GetValue() == "response-timeout") {
					exported += m.GetCounter().GetValue()
				}
			}
		}
	}
	if exported != requests {
		t.Errorf("taobox_p2p_rejects_total for unread responses = %v, want %d", exported, requests)
	}
	// The peer is not banned for it, and a peer that reads is served.
	if _, err := a.Request(ctx20(t), b.ID(), types.ReqHeaders, []byte("x")); err != nil {
		t.Fatalf("a reading request after the cancellations: %v", err)
	}
}
