package p2p

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"taobox/chain/types"
)

// gossipCap is the cap function of a gossip stream.
func gossipCap(kind byte) int {
	if t := types.MsgType(kind); t.IsGossip() {
		return t.MaxMessage()
	}
	return -1
}

func TestReadFrame(t *testing.T) {
	vote := bytes.Repeat([]byte{1}, types.MaxVoteMsg)
	cases := []struct {
		name    string
		in      []byte
		want    []byte
		wantErr error
	}{
		{"empty payload", AppendFrame(nil, byte(types.MsgTx), nil), []byte{}, nil},
		{"vote at cap", AppendFrame(nil, byte(types.MsgVote), vote), vote, nil},
		{"vote over cap", AppendFrame(nil, byte(types.MsgVote), append(vote, 1)), nil, ErrMisbehaving},
		{"request kind", AppendFrame(nil, byte(types.ReqHello), nil), nil, ErrMisbehaving},
		{"kind 0", AppendFrame(nil, 0, nil), nil, ErrMisbehaving},
		{"no bytes", nil, nil, io.EOF},
		{"short header", []byte{1, 0, 0}, nil, io.ErrUnexpectedEOF},
		{"short payload", AppendFrame(nil, byte(types.MsgTx), []byte("abc"))[:7], nil, io.ErrUnexpectedEOF},
		{"4 GiB announced", []byte{byte(types.MsgBlock), 0xff, 0xff, 0xff, 0xff}, nil, ErrMisbehaving},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, got, err := ReadFrame(bytes.NewReader(c.in), gossipCap)
			if c.wantErr != nil {
				if !errors.Is(err, c.wantErr) {
					t.Fatalf("err = %v, want %v", err, c.wantErr)
				}
				return
			}
			if err != nil || !bytes.Equal(got, c.want) {
				t.Fatalf("got %d bytes, %v; want %d bytes", len(got), err, len(c.want))
			}
		})
	}
}

// A large frame arrives in pieces; the reader grows its buffer and reads
// exactly the frame, leaving what follows.
func TestReadFrameLargeAndTrailing(t *testing.T) {
	payload := bytes.Repeat([]byte("0123456789"), 400_000) // 4 MB
	in := AppendFrame(nil, byte(types.MsgBlock), payload)
	in = append(in, "next"...)
	r := io.MultiReader(bytes.NewReader(in[:1000]), bytes.NewReader(in[1000:70_000]), bytes.NewReader(in[70_000:]))
	kind, got, err := ReadFrame(r, gossipCap)
	if err != nil || kind != byte(types.MsgBlock) || !bytes.Equal(got, payload) {
		t.Fatalf("kind %d, %d bytes, %v", kind, len(got), err)
	}
	rest, _ := io.ReadAll(r)
	if string(rest) != "next" {
		t.Fatalf("rest = %q", rest)
	}
}

func FuzzReadFrame(f *testing.F) {
	f.Add(AppendFrame(nil, byte(types.MsgTx), []byte("tx")))
	f.Add(AppendFrame(nil, byte(types.MsgVote), make([]byte, types.MaxVoteMsg+1)))
	f.Add([]byte{byte(types.MsgBlock), 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{3, 0, 0})
	f.Fuzz(func(t *testing.T, in []byte) {
		kind, payload, err := ReadFrame(bytes.NewReader(in), gossipCap)
		if err != nil {
			if errors.Is(err, ErrMisbehaving) && len(in) >= FrameHeaderSize {
				n := int(uint32(in[1])<<24 | uint32(in[2])<<16 | uint32(in[3])<<8 | uint32(in[4]))
				if gossipCap(in[0]) >= 0 && n <= gossipCap(in[0]) {
					t.Fatalf("frame within its cap reported as misbehaviour: %v", err)
				}
			}
			return
		}
		if len(payload) > gossipCap(kind) {
			t.Fatalf("payload of %d bytes over cap %d", len(payload), gossipCap(kind))
		}
		if re := AppendFrame(nil, kind, payload); !bytes.Equal(re, in[:len(re)]) {
			t.Fatalf("re-encoding differs")
		}
	})
}

func TestHelloRoundTrip(t *testing.T) {
	m := Hello{Version: ProtocolVersion, ChainID: types.Hash{1, 2}, ListenPort: 30333,
		Status: Status{Head: 100, Finalized: 99, HeadHash: types.Hash{0xaa}}}
	b := m.Encode()
	if len(b) != HelloSize {
		t.Fatalf("encoded %d bytes, want %d", len(b), HelloSize)
	}
	got, err := DecodeHello(b)
	if err != nil || got != m {
		t.Fatalf("got %+v, %v", got, err)
	}
	// A later revision's extra bytes are ignored.
	if got, err := DecodeHello(append(b, 1, 2, 3)); err != nil || got != m {
		t.Fatalf("with trailing bytes: %+v, %v", got, err)
	}
	if _, err := DecodeHello(b[:HelloSize-1]); !errors.Is(err, ErrBadHello) {
		t.Errorf("short: %v", err)
	}
	if _, err := DecodeHello(make([]byte, types.MaxHelloMsg+1)); !errors.Is(err, ErrBadHello) {
		t.Errorf("long: %v", err)
	}
	// Another version is readable from 2 bytes.
	if got, _ := DecodeHello([]byte{0, 9}); got.Version != 9 {
		t.Errorf("version = %d", got.Version)
	}
}

func FuzzHello(f *testing.F) {
	f.Add(Hello{Version: 1, ListenPort: 1}.Encode())
	f.Add([]byte{0, 2})
	f.Fuzz(func(t *testing.T, in []byte) {
		m, err := DecodeHello(in)
		if err != nil {
			return
		}
		if !bytes.Equal(m.Encode(), in[:HelloSize]) {
			t.Fatal("re-encoding differs")
		}
	})
}

func TestPeersCodec(t *testing.T) {
	ps := []PeerAddr{{PeerID{1}, "127.0.0.1:1"}, {PeerID{2}, "[::1]:65535"}, {PeerID{3}, "example.org:30333"}}
	got, err := DecodePeers(EncodePeers(ps))
	if err != nil || len(got) != 3 || got[0] != ps[0] || got[1] != ps[1] || got[2] != ps[2] {
		t.Fatalf("got %+v, %v", got, err)
	}
	long := make([]PeerAddr, 100)
	for i := range long {
		long[i] = PeerAddr{PeerID{byte(i)}, "10.0.0.1:1"}
	}
	if got, err := DecodePeers(EncodePeers(long)); err != nil || len(got) != MaxPeersPerResponse {
		t.Errorf("100 entries encode to %d, %v; want %d", len(got), err, MaxPeersPerResponse)
	}
	bad := map[string][]byte{
		"empty":         nil,
		"count too big": {0, MaxPeersPerResponse + 1},
		"truncated":     {0, 1, 1, 2},
		"trailing":      append(EncodePeers(nil), 0),
		"no port":       EncodePeers([]PeerAddr{{PeerID{1}, "127.0.0.1"}}),
		"port 0":        EncodePeers([]PeerAddr{{PeerID{1}, "127.0.0.1:0"}}),
		"empty host":    EncodePeers([]PeerAddr{{PeerID{1}, ":1"}}),
	}
	for name, b := range bad {
		if _, err := DecodePeers(b); !errors.Is(err, ErrBadPeers) {
			t.Errorf("%s: err = %v, want ErrBadPeers", name, err)
		}
	}
}

func FuzzPeers(f *testing.F) {
	f.Add(EncodePeers([]PeerAddr{{PeerID{1}, "127.0.0.1:1"}}))
	f.Add([]byte{0, 0})
	f.Fuzz(func(t *testing.T, in []byte) {
		ps, err := DecodePeers(in)
		if err != nil {
			return
		}
		if !bytes.Equal(EncodePeers(ps), in) {
			t.Fatal("re-encoding differs")
		}
	})
}

func TestParseAddr(t *testing.T) {
	id := PeerID{0xab, 0xcd}
	cases := []struct {
		in     string
		hasID  bool
		hp     string
		errSub string
	}{
		{"127.0.0.1:30333", false, "127.0.0.1:30333", ""},
		{id.String() + "@10.0.0.1:1", true, "10.0.0.1:1", ""},
		{"0x" + strings.Repeat("00", 32) + "@h:1", true, "h:1", ""},
		{strings.Repeat("ab", 32) + "@[::1]:2", true, "[::1]:2", ""},
		{"127.0.0.1", false, "", "missing port"},
		{"h:0", false, "", "port must be"},
		{"nope@h:1", false, "", "SS58"},
		{strings.Repeat("zz", 32) + "@h:1", false, "", "invalid byte"},
	}
	for _, c := range cases {
		gotID, hasID, hp, err := ParseAddr(c.in)
		if c.errSub != "" {
			if err == nil || !strings.Contains(err.Error(), c.errSub) {
				t.Errorf("%q: err = %v, want it to mention %q", c.in, err, c.errSub)
			}
			continue
		}
		if err != nil || hasID != c.hasID || hp != c.hp {
			t.Errorf("%q: %v %q %v", c.in, hasID, hp, err)
		}
		if c.in[0] != '0' && c.in[0] != 'a' && hasID && gotID != id {
			t.Errorf("%q: id %s, want %s", c.in, gotID, id)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	key := ed25519.NewKeyFromSeed(make([]byte, 32))
	ok := Config{Key: key, ChainID: types.Hash{1}, Listen: "127.0.0.1:0"}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	if ok.MaxInbound != DefaultMaxInbound || ok.RequestTimeout != DefaultRequestTimeout || ok.Now == nil || ok.Logger == nil {
		t.Errorf("defaults not filled: %+v", ok)
	}
	var empty Config
	err := empty.Validate()
	for _, want := range []string{"Key", "ChainID", "Listen"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("empty config: %v, want it to mention %s", err, want)
		}
	}
	bad := ok
	bad.MaxPerIP, bad.ByteBurst, bad.Bootstrap = -1, 10, []string{"nohost"}
	err = bad.Validate()
	for _, want := range []string{"MaxPerIP", "ByteBurst", "Bootstrap"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("bad config: %v, want it to mention %s", err, want)
		}
	}
}

func TestBucket(t *testing.T) {
	t0 := time.Unix(1000, 0)
	b := newBucket(2, 4, t0) // 2/s, burst 4
	steps := []struct {
		at   time.Duration
		n    float64
		want bool
	}{
		{0, 4, true},                        // the burst
		{0, 1, false},                       // empty
		{500 * time.Millisecond, 1, true},   // refilled 1
		{500 * time.Millisecond, 1, false},  // and spent
		{10 * time.Second, 5, false},        // never more than the burst
		{10 * time.Second, 4, true},         //
		{9 * time.Second, 1, false},         // a clock going back refills nothing
		{10500 * time.Millisecond, 1, true}, //
	}
	for i, s := range steps {
		if got := b.take(s.n, t0.Add(s.at)); got != s.want {
			t.Errorf("step %d: take(%v) at %v = %v, want %v", i, s.n, s.at, got, s.want)
		}
	}
}

func TestLimiterAbuse(t *testing.T) {
	cfg := Config{GossipRate: 1, GossipBurst: 2, RequestRate: 1, RequestBurst: 1, ByteRate: 100, ByteBurst: 100, AbuseDrops: 2}
	now := time.Unix(0, 0)
	l := newLimiter(&cfg, now)
	want := []verdict{allow, allow, drop, drop, abuse}
	for i, w := range want {
		if got := l.admit(&l.gossip, 1, now); got != w {
			t.Errorf("message %d: %v, want %v", i, got, w)
		}
	}
	// Bytes count too: a message larger than the byte bucket is dropped.
	l = newLimiter(&cfg, now)
	if got := l.admit(&l.requests, 101, now); got != drop {
		t.Errorf("oversized for the byte bucket: %v, want drop", got)
	}
}
