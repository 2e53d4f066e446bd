package p2p

import (
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"taobox/chain/types"
)

// Config configures a Host. Zero fields take the defaults stated on them
// (Validate fills them in).
type Config struct {
	// Key is the node key: its public key is the TLS certificate key and the
	// PeerID. Required.
	Key ed25519.PrivateKey
	// ChainID is the genesis hash; peers on another chain are refused at
	// Hello. Required.
	ChainID types.Hash
	// Listen is the UDP host:port to bind, e.g. "127.0.0.1:0" or
	// "0.0.0.0:30333". Required. The same socket dials out.
	Listen string
	// Bootstrap peers: "host:port" or "<ss58 or 64-hex id>@host:port", dialled
	// at Start and redialled with exponential backoff while disconnected.
	// With an id, the peer must present that key.
	Bootstrap []string

	// MaxInbound caps inbound connections. A connection takes its slot
	// only once the client has proven its source address (its certificate
	// arrived in the handshake, which needs our Handshake packets), so
	// packets with spoofed sources cannot hold slots. Default 40.
	MaxInbound int
	// MaxHandshaking caps the inbound handshakes in progress that hold no
	// slot yet, twice over: once for unproven source addresses, once for
	// addresses a QUIC Retry proved. Once half of the unproven pool is in
	// use, new attempts must answer a Retry first. Default 64.
	MaxHandshaking int
	// MaxOutbound caps the connections the dialler opens to peers learned by
	// peer exchange. Bootstrap peers and explicit Connect calls are not
	// capped by it. Default 10.
	MaxOutbound int
	// MaxPerIP caps inbound connections from one IP address (charged, like
	// MaxInbound, once the address is proven); loopback addresses are
	// exempt. Default 2.
	MaxPerIP int

	// RequestTimeout bounds one request (open stream, send, serve, read the
	// response) and one gossip stream (open, write / read). Default 15 s.
	RequestTimeout time.Duration
	// ResponseWriteTimeout bounds writing one response once it is ready. A
	// requester that does not read its responses keeps its flow-control
	// window shut and the write blocked; when this passes the stream is
	// cancelled (RESET_STREAM) and the response's memory freed (counted
	// in Stats.Rejects["response-timeout"]). Default 10 s.
	ResponseWriteTimeout time.Duration
	// MaxPendingPerPeer caps the bytes of responses to one peer that are
	// being written (held in memory until the peer's flow control takes
	// them), and MaxPendingBytes the same over all peers. A request that
	// finds its peer (or the host) at the cap is not served, and a response
	// that would go over it is not sent: the stream is cancelled (counted
	// in Stats.Rejects["response-unread"]). One response always goes out
	// when none is pending to that peer. Defaults 16 MiB (eight 1 MiB
	// snapshot chunks in flight, or two block ranges) and 256 MiB.
	MaxPendingPerPeer, MaxPendingBytes int64
	// BanDuration is how long a banned peer is refused. Default 1 h.
	BanDuration time.Duration

	// Per-peer token buckets on what a peer sends us. A gossip message or a
	// request over its bucket is dropped (a request gets StatusBusy) and
	// counted; AbuseDrops drops within a minute ban the peer.
	GossipRate   float64 // gossip messages per second; default 500
	GossipBurst  int     // default 1000 (a round of 64 validators' prevotes and precommits, relayed, fits)
	RequestRate  float64 // requests per second; default 50
	RequestBurst int     // default 100
	ByteRate     float64 // bytes per second of gossip and request bodies; default 8 MiB/s
	ByteBurst    int     // default 2 × types.MaxBlockMsg (≈ 8.2 MiB); must be ≥ types.MaxBlockMsg
	AbuseDrops   int     // drops tolerated per minute before a ban; default 1000

	// HandshakeRate and HandshakeBurst bound new inbound connection attempts
	// per second (all sources) before the listener demands QUIC Retry
	// (source address validation, one extra round trip) from further ones,
	// so spoofed-source floods cost us no handshake work. Defaults 50 and
	// 100.
	HandshakeRate  float64
	HandshakeBurst int

	// SendQueue is the per-peer queue of outgoing gossip; a full queue drops
	// the message and counts it. Default 256.
	SendQueue int
	// SendWorkers is the number of gossip streams written to one peer at a
	// time (so a 4 MiB block does not hold up votes). Default 4.
	SendWorkers int
	// ServeConcurrency bounds Handler.Serve calls across all peers.
	// Default 4 (a 2-core node).
	ServeConcurrency int
	// WindowBudget caps the flow-control window growth granted over all
	// connections, in bytes. Default 256 MiB.
	WindowBudget int64

	// DialInterval is how often the dialler looks at bootstrap peers and free
	// outbound slots. Default 5 s.
	DialInterval time.Duration
	// PexInterval is how often the dialler asks each peer for its peers (and
	// refreshes its Status with a Hello). Default 30 s.
	PexInterval time.Duration
	// DialBackoff and DialBackoffMax bound the exponential backoff after a
	// failed dial of one address. Defaults 1 s and 2 min.
	DialBackoff, DialBackoffMax time.Duration

	// Logger receives the host's logs; nil discards them.
	Logger *slog.Logger
	// Now is the clock for bans, token buckets and PeerInfo.Since; nil means
	// time.Now. QUIC timers and the dialler use the real clock.
	Now func() time.Time
}

// Defaults.
const (
	DefaultMaxInbound       = 40
	DefaultMaxHandshaking   = 64
	DefaultMaxOutbound      = 10
	DefaultMaxPerIP         = 2
	DefaultRequestTimeout   = 15 * time.Second
	DefaultResponseWrite    = 10 * time.Second
	DefaultPendingPerPeer   = 16 << 20
	DefaultPendingBytes     = 256 << 20
	DefaultBanDuration      = time.Hour
	DefaultGossipRate       = 500
	DefaultGossipBurst      = 1000
	DefaultRequestRate      = 50
	DefaultRequestBurst     = 100
	DefaultByteRate         = 8 << 20
	DefaultByteBurst        = 2 * types.MaxBlockMsg
	DefaultAbuseDrops       = 1000
	DefaultHandshakeRate    = 50
	DefaultHandshakeBurst   = 100
	DefaultSendQueue        = 256
	DefaultSendWorkers      = 4
	DefaultServeConcurrency = 4
	DefaultWindowBudget     = 256 << 20
	DefaultDialInterval     = 5 * time.Second
	DefaultPexInterval      = 30 * time.Second
	DefaultDialBackoff      = time.Second
	DefaultDialBackoffMax   = 2 * time.Minute
)

// Validate fills in the defaults of zero fields, then reports every problem
// at once (missing key, chain id or listen address, a bad bootstrap
// entry, negative limits).
func (c *Config) Validate() error {
	setDefault(&c.MaxInbound, DefaultMaxInbound)
	setDefault(&c.MaxHandshaking, DefaultMaxHandshaking)
	setDefault(&c.MaxOutbound, DefaultMaxOutbound)
	setDefault(&c.MaxPerIP, DefaultMaxPerIP)
	setDefault(&c.RequestTimeout, DefaultRequestTimeout)
	setDefault(&c.ResponseWriteTimeout, DefaultResponseWrite)
	setDefault(&c.MaxPendingPerPeer, DefaultPendingPerPeer)
	setDefault(&c.MaxPendingBytes, DefaultPendingBytes)
	setDefault(&c.BanDuration, DefaultBanDuration)
	setDefault(&c.GossipRate, DefaultGossipRate)
	setDefault(&c.GossipBurst, DefaultGossipBurst)
	setDefault(&c.RequestRate, DefaultRequestRate)
	setDefault(&c.RequestBurst, DefaultRequestBurst)
	setDefault(&c.ByteRate, DefaultByteRate)
	setDefault(&c.ByteBurst, DefaultByteBurst)
	setDefault(&c.AbuseDrops, DefaultAbuseDrops)
	setDefault(&c.HandshakeRate, DefaultHandshakeRate)
	setDefault(&c.HandshakeBurst, DefaultHandshakeBurst)
	setDefault(&c.SendQueue, DefaultSendQueue)
	setDefault(&c.SendWorkers, DefaultSendWorkers)
	setDefault(&c.ServeConcurrency, DefaultServeConcurrency)
	setDefault(&c.WindowBudget, DefaultWindowBudget)
	setDefault(&c.DialInterval, DefaultDialInterval)
	setDefault(&c.PexInterval, DefaultPexInterval)
	setDefault(&c.DialBackoff, DefaultDialBackoff)
	setDefault(&c.DialBackoffMax, DefaultDialBackoffMax)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}

	var errs []error
	if len(c.Key) != ed25519.PrivateKeySize {
		errs = append(errs, fmt.Errorf("Key has %d bytes, want an ed25519 private key of %d (the node key)", len(c.Key), ed25519.PrivateKeySize))
	}
	if c.ChainID == (types.Hash{}) {
		errs = append(errs, errors.New("ChainID is zero: set it to the genesis hash"))
	}
	if c.Listen == "" {
		errs = append(errs, errors.New(`Listen is empty: set a UDP host:port such as "0.0.0.0:30333" or "127.0.0.1:0"`))
	}
	for _, b := range c.Bootstrap {
		if _, _, _, err := ParseAddr(b); err != nil {
			errs = append(errs, fmt.Errorf("Bootstrap: %w", err))
		}
	}
	for _, f := range []struct {
		name string
		v    float64
	}{
		{"MaxInbound", float64(c.MaxInbound)}, {"MaxOutbound", float64(c.MaxOutbound)},
		{"MaxHandshaking", float64(c.MaxHandshaking)},
		{"MaxPerIP", float64(c.MaxPerIP)}, {"RequestTimeout", float64(c.RequestTimeout)},
		{"BanDuration", float64(c.BanDuration)}, {"GossipRate", c.GossipRate},
		{"ResponseWriteTimeout", float64(c.ResponseWriteTimeout)},
		{"MaxPendingPerPeer", float64(c.MaxPendingPerPeer)}, {"MaxPendingBytes", float64(c.MaxPendingBytes)},
		{"GossipBurst", float64(c.GossipBurst)}, {"RequestRate", c.RequestRate},
		{"RequestBurst", float64(c.RequestBurst)}, {"ByteRate", c.ByteRate},
		{"AbuseDrops", float64(c.AbuseDrops)}, {"SendQueue", float64(c.SendQueue)},
		{"HandshakeRate", c.HandshakeRate}, {"HandshakeBurst", float64(c.HandshakeBurst)},
		{"SendWorkers", float64(c.SendWorkers)}, {"ServeConcurrency", float64(c.ServeConcurrency)},
		{"WindowBudget", float64(c.WindowBudget)}, {"DialInterval", float64(c.DialInterval)},
		{"PexInterval", float64(c.PexInterval)}, {"DialBackoff", float64(c.DialBackoff)},
		{"DialBackoffMax", float64(c.DialBackoffMax)},
	} {
		if f.v <= 0 {
			errs = append(errs, fmt.Errorf("%s is negative: leave it zero for the default or set a positive value", f.name))
		}
	}
	if c.ByteBurst < types.MaxBlockMsg {
		errs = append(errs, fmt.Errorf("ByteBurst %d < types.MaxBlockMsg %d: a full block could never pass the byte bucket", c.ByteBurst, types.MaxBlockMsg))
	}
	if len(errs) > 0 {
		return fmt.Errorf("p2p: config: %w", errors.Join(errs...))
	}
	return nil
}

func setDefault[T int | int64 | float64 | time.Duration](p *T, def T) {
	if *p == 0 {
		*p = def
	}
}

// ParseAddr parses a peer address: "host:port", or "<id>@host:port" where
// id is an SS58 address or 64 hex digits (optionally "0x"-prefixed).
// hasID reports whether an id was given.
func ParseAddr(s string) (id PeerID, hasID bool, hostport string, err error) {
	hostport = s
	if at := strings.LastIndexByte(s, '@'); at >= 0 {
		idText := s[:at]
		hostport = s[at+1:]
		hasID = true
		t := strings.TrimPrefix(strings.TrimPrefix(idText, "0x"), "0X")
		if len(t) == 64 {
			if _, herr := hex.Decode(id[:], []byte(t)); herr != nil {
				return PeerID{}, false, "", fmt.Errorf("p2p: peer address %q: id: %v", s, herr)
			}
		} else if id, err = types.ParseAddress(idText); err != nil {
			return PeerID{}, false, "", fmt.Errorf("p2p: peer address %q: id must be SS58 or 64 hex digits: %w", s, err)
		}
	}
	if err := checkHostPort(hostport); err != nil {
		return PeerID{}, false, "", fmt.Errorf("p2p: peer address %q: %v (want host:port or id@host:port)", s, err)
	}
	return id, hasID, hostport, nil
}

// bucket is a token bucket driven by an explicit clock: rate tokens per
// second up to burst. Not safe for concurrent use.
type bucket struct {
	rate, burst, tokens float64
	last                time.Time
}

func newBucket(rate float64, burst int, now time.Time) bucket {
	return bucket{rate: rate, burst: float64(burst), tokens: float64(burst), last: now}
}

// take refills the bucket for the time since the last call, then takes n
// tokens if it holds that many and reports whether it did.
func (b *bucket) take(n float64, now time.Time) bool {
	if dt := now.Sub(b.last).Seconds(); dt > 0 {
		b.tokens = min(b.burst, b.tokens+dt*b.rate)
		b.last = now
	}
	if b.tokens < n {
		return false
	}
	b.tokens -= n
	return true
}

// limiter holds one peer's buckets.
type limiter struct {
	gossip, requests, bytes, abuse bucket
}

func newLimiter(c *Config, now time.Time) limiter {
	return limiter{
		gossip:   newBucket(c.GossipRate, c.GossipBurst, now),
		requests: newBucket(c.RequestRate, c.RequestBurst, now),
		bytes:    newBucket(c.ByteRate, c.ByteBurst, now),
		abuse:    newBucket(float64(c.AbuseDrops)/60, c.AbuseDrops, now),
	}
}

// verdict of a limiter check.
type verdict int

const (
	allow verdict = iota
	drop          // over a bucket: drop this message
	abuse         // over a bucket for too long: ban the peer
)

// admit charges one message of n bytes to the message bucket msgs (the
// gossip or request bucket of l) and to the byte bucket. A refusal charges
// the abuse bucket; an empty abuse bucket means ban.
func (l *limiter) admit(msgs *bucket, n int, now time.Time) verdict {
	if msgs.take(1, now) && l.bytes.take(float64(n), now) {
		return allow
	}
	if !l.abuse.take(1, now) {
		return abuse
	}
	return drop
}
