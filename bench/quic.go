package bench

import (
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"time"

	"github.com/quic-go/quic-go"

	"taobox/chain/types"
	"taobox/task"
)

// The QUIC section runs a server and a client in this process over
// 127.0.0.1 UDP with quic-go and the task protocol's TLS (TLS 1.3, a
// self-signed ed25519 certificate pinned by the client, ALPN
// taobox-task/2): the handshake; RoundTripBytes-byte request/response
// round trips on one stream, serially (p50, p99); and one stream's bulk
// upload until the server acknowledges every byte (MB/s, 10^6 bytes).

// RoundTripBytes is the size of each request and response.
const RoundTripBytes = 64

const (
	quicEcho byte = 'e' // the stream echoes RoundTripBytes-byte messages
	quicSink byte = 's' // the stream is read to its end; the server answers the byte count
)

func quicSteps(c *Config, r *Report) []step {
	return []step{{"quic loopback", func(ctx context.Context) (string, error) {
		res, err := benchQUIC(ctx, c)
		if err != nil {
			res.Error = err.Error()
		}
		r.QUIC = &res
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("handshake %.2f ms, RTT p50 %.0f µs p99 %.0f µs, stream %.0f MB/s",
			res.HandshakeMs, res.RTTP50us, res.RTTP99us, res.StreamMBPerS), nil
	}}}
}

func benchQUIC(ctx context.Context, c *Config) (QUICResult, error) {
	res := QUICResult{RoundTripBytes: RoundTripBytes}
	rng := rand.New(rand.NewPCG(c.Seed, 0x71756963))
	var seed [ed25519.SeedSize]byte
	for i := range seed {
		seed[i] = byte(rng.Uint32())
	}
	key := ed25519.NewKeyFromSeed(seed[:])
	var id types.AccountID
	copy(id[:], key.Public().(ed25519.PublicKey))
	stls, err := task.ServerTLS(key)
	if err != nil {
		return res, err
	}
	ln, err := quic.ListenAddr("127.0.0.1:0", stls, &quic.Config{MaxIdleTimeout: 30 * time.Second})
	if err != nil {
		return res, fmt.Errorf("listen on 127.0.0.1 UDP: %w", err)
	}
	defer ln.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go quicServe(ctx, ln)

	t0 := c.Now()
	conn, err := quic.DialAddr(ctx, ln.Addr().String(), task.ClientTLS(id), &quic.Config{MaxIdleTimeout: 30 * time.Second})
	if err != nil {
		return res, fmt.Errorf("dial: %w", err)
	}
	res.HandshakeMs = ms(c.Now().Sub(t0))
	defer conn.CloseWithError(0, "done")

	// Round trips.
	s, err := conn.OpenStreamSync(ctx)
	if err != nil {
		return res, err
	}
	msg := make([]byte, RoundTripBytes)
	for i := range msg {
		msg[i] = byte(rng.Uint32())
	}
	if _, err := s.Write([]byte{quicEcho}); err != nil {
		return res, err
	}
	back := make([]byte, RoundTripBytes)
	lo, hi := 200, 200_000
	if c.Quick {
		lo, hi = 20, 20
	}
	for range 20 { // warm-up beyond loop's one call: congestion window, caches
		if err := quicRoundTrip(s, msg, back); err != nil {
			return res, err
		}
	}
	ds, err := loop(ctx, c, lo, hi, func() error { return quicRoundTrip(s, msg, back) })
	if err != nil {
		return res, fmt.Errorf("round trips: %w", err)
	}
	s.Close()
	res.RoundTrips = len(ds)
	res.RTTP50us, res.RTTP99us = us(percentile(ds, 50)), us(percentile(ds, 99))

	// Stream throughput.
	minBytes, maxBytes := int64(64<<20), int64(4<<30)
	if c.Quick {
		minBytes, maxBytes = 4<<20, 4<<20
	}
	buf := make([]byte, 64<<10)
	for i := range buf {
		buf[i] = byte(rng.Uint32())
	}
	bs, err := conn.OpenStreamSync(ctx)
	if err != nil {
		return res, err
	}
	t0 = c.Now()
	if _, err := bs.Write([]byte{quicSink}); err != nil {
		return res, err
	}
	var sent int64
	for sent < maxBytes {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		n, err := bs.Write(buf)
		sent += int64(n)
		if err != nil {
			return res, fmt.Errorf("stream write: %w", err)
		}
		el := c.Now().Sub(t0)
		if sent >= minBytes && el >= c.MinTime {
			break
		}
		if sent%(4<<20) == 0 {
			frac := float64(sent) / float64(minBytes)
			if c.MinTime > 0 {
				frac = min(frac, float64(el)/float64(c.MinTime))
			}
			c.Progress.Update(min(frac, 1))
		}
	}
	if err := bs.Close(); err != nil {
		return res, err
	}
	var ack [8]byte
	if _, err := io.ReadFull(bs, ack[:]); err != nil {
		return res, fmt.Errorf("stream acknowledgement: %w", err)
	}
	el := c.Now().Sub(t0)
	if got := int64(binary.LittleEndian.Uint64(ack[:])); got != sent+1 {
		return res, fmt.Errorf("the server received %d bytes of %d", got, sent+1)
	}
	res.StreamBytes = sent
	if el > 0 {
		res.StreamMBPerS = float64(sent) / el.Seconds() / 1e6
	}
	return res, nil
}

func quicRoundTrip(s *quic.Stream, msg, back []byte) error {
	if _, err := s.Write(msg); err != nil {
		return err
	}
	_, err := io.ReadFull(s, back)
	return err
}

// quicServe accepts one connection after another and serves each stream
// by its first byte, until ctx ends.
func quicServe(ctx context.Context, ln *quic.Listener) {
	for {
		conn, err := ln.Accept(ctx)
		if err != nil {
			return
		}
		go func() {
			for {
				s, err := conn.AcceptStream(ctx)
				if err != nil {
					return
				}
				go quicServeStream(s)
			}
		}()
	}
}

func quicServeStream(s *quic.Stream) {
	defer s.Close()
	var mode [1]byte
	if _, err := io.ReadFull(s, mode[:]); err != nil {
		return
	}
	switch mode[0] {
	case quicEcho:
		buf := make([]byte, RoundTripBytes)
		for {
			if _, err := io.ReadFull(s, buf); err != nil {
				return
			}
			if _, err := s.Write(buf); err != nil {
				return
			}
		}
	case quicSink:
		n, err := io.Copy(io.Discard, s)
		if err != nil && !errors.Is(err, io.EOF) {
			return
		}
		var ack [8]byte
		binary.LittleEndian.PutUint64(ack[:], uint64(n+1))
		s.Write(ack[:])
	}
}
