package types

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestProbeRoundTrip(t *testing.T) {
	key := AccountID{1, 2, 3}
	for _, q := range []ProbeRequest{
		{Host: "203.0.113.7", Port: 8091, Key: key},
		{Host: "2001:db8::1", Port: 1, Key: key},
		{Host: strings.Repeat("a", MaxHostLen), Port: 65535},
	} {
		b := q.Encode()
		if len(b) > MaxProbeRequest || len(b) > ReqProbe.MaxMessage() {
			t.Fatalf("%q: %d bytes over the caps %d / %d", q.Host, len(b), MaxProbeRequest, ReqProbe.MaxMessage())
		}
		got, err := DecodeProbeRequest(b)
		if err != nil || *got != q {
			t.Fatalf("%q: got %+v, %v", q.Host, got, err)
		}
	}
	for _, p := range []ProbeResult{
		{Verdict: ProbeReachable, RTT: 1234 * time.Microsecond, Observed: "203.0.113.7"},
		{Verdict: ProbeUnreachable, Observed: "2001:db8::1", Reason: "no QUIC answer"},
		{Verdict: ProbeRefused, Reason: strings.Repeat("r", MaxProbeReason)},
	} {
		b := p.Encode()
		if len(b) > MaxProbeResult || len(b) > ReqProbe.MaxResponse() {
			t.Fatalf("%d bytes over the caps", len(b))
		}
		got, err := DecodeProbeResult(b)
		if err != nil || *got != p {
			t.Fatalf("got %+v, %v; want %+v", got, err, p)
		}
	}
}

// Encode keeps any value decodable: long texts are cut, the RTT clamped.
func TestProbeResultEncodeClamps(t *testing.T) {
	p := ProbeResult{Verdict: ProbeUnreachable, RTT: -time.Second, Observed: strings.Repeat("o", 100), Reason: strings.Repeat("x", 2000)}
	got, err := DecodeProbeResult(p.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if got.RTT != 0 || len(got.Observed) != MaxProbeObserved || len(got.Reason) != MaxProbeReason {
		t.Fatalf("got rtt %v, observed %d bytes, reason %d bytes", got.RTT, len(got.Observed), len(got.Reason))
	}
	p.RTT = 100 * time.Hour
	if got, _ := DecodeProbeResult(p.Encode()); got.RTT != time.Duration(1<<32-1)*time.Microsecond {
		t.Fatalf("rtt %v not clamped", got.RTT)
	}
}

func TestProbeDecodeRejects(t *testing.T) {
	good := (&ProbeRequest{Host: "10.0.0.1", Port: 9, Key: AccountID{7}}).Encode()
	for _, c := range []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, ErrShort},
		{"trailing", append(append([]byte{}, good...), 0), ErrTrailing},
		{"short", good[:len(good)-1], ErrShort},
		{"port 0", (&ProbeRequest{Host: "10.0.0.1"}).Encode(), ErrBadProbe},
		{"empty host", (&ProbeRequest{Port: 1}).Encode(), ErrBadProbe},
		{"space in host", (&ProbeRequest{Host: "a b", Port: 1}).Encode(), ErrBadProbe},
		{"host over cap", (&ProbeRequest{Host: strings.Repeat("h", MaxHostLen+1), Port: 1}).Encode(), ErrTooLong},
		{"over size", make([]byte, MaxProbeRequest+1), ErrTooLong},
	} {
		if _, err := DecodeProbeRequest(c.b); !errors.Is(err, c.want) {
			t.Errorf("request %s: got %v, want %v", c.name, err, c.want)
		}
	}
	res := (&ProbeResult{Verdict: ProbeRefused, Reason: "no"}).Encode()
	for _, c := range []struct {
		name string
		b    []byte
		want error
	}{
		{"verdict 0", append([]byte{0}, res[1:]...), ErrBadProbe},
		{"verdict 4", append([]byte{4}, res[1:]...), ErrBadProbe},
		{"trailing", append(append([]byte{}, res...), 1), ErrTrailing},
		{"over size", make([]byte, MaxProbeResult+1), ErrTooLong},
	} {
		if _, err := DecodeProbeResult(c.b); !errors.Is(err, c.want) {
			t.Errorf("result %s: got %v, want %v", c.name, err, c.want)
		}
	}
}

func TestReqProbeIsRequest(t *testing.T) {
	if !ReqProbe.IsRequest() || ReqProbe.IsGossip() || ReqProbe.String() != "probe" {
		t.Fatalf("ReqProbe: request %v gossip %v name %q", ReqProbe.IsRequest(), ReqProbe.IsGossip(), ReqProbe)
	}
	if ReqProbe.MaxMessage() < MaxProbeRequest || ReqProbe.MaxResponse() != MaxProbeResult {
		t.Fatalf("caps %d / %d", ReqProbe.MaxMessage(), ReqProbe.MaxResponse())
	}
}

// Whatever the decoders accept is canonical and valid.
func FuzzDecodeProbeRequest(f *testing.F) {
	f.Add((&ProbeRequest{Host: "203.0.113.7", Port: 8091, Key: AccountID{1}}).Encode())
	f.Add((&ProbeRequest{Host: "miner.example.org", Port: 1}).Encode())
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		q, err := DecodeProbeRequest(b)
		if err != nil {
			return
		}
		if enc := q.Encode(); !bytes.Equal(enc, b) {
			t.Fatalf("not canonical:\n in  %x\n out %x", b, enc)
		}
		if err := q.Validate(); err != nil {
			t.Fatalf("decoded request fails Validate: %v", err)
		}
	})
}

func FuzzDecodeProbeResult(f *testing.F) {
	f.Add((&ProbeResult{Verdict: ProbeReachable, RTT: time.Millisecond, Observed: "127.0.0.1"}).Encode())
	f.Add((&ProbeResult{Verdict: ProbeRefused, Reason: "rate limited"}).Encode())
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := DecodeProbeResult(b)
		if err != nil {
			return
		}
		if enc := p.Encode(); !bytes.Equal(enc, b) {
			t.Fatalf("not canonical:\n in  %x\n out %x", b, enc)
		}
		if p.Verdict.String() == "" || len(p.Reason) > MaxProbeReason {
			t.Fatalf("bad result %+v", p)
		}
	})
}
