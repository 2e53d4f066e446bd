package task

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"taobox/chain/types"
)

func testKey(seed byte) (ed25519.PrivateKey, types.AccountID) {
	k := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, 32))
	var id types.AccountID
	copy(id[:], k.Public().(ed25519.PublicKey))
	return k, id
}

func sampleBody() Body {
	return Body{PromptIDs: []uint32{1, 2, 3}, MaxTokens: 8, Temperature: 0.7, TopK: 40, TopP: 0.9, Seed: 42, TopAlts: 4, ModelHash: [32]byte{9}}
}

func TestBodyRoundTrip(t *testing.T) {
	b := sampleBody()
	p := b.Encode()
	if len(p) != bodyFixed+12 {
		t.Fatalf("len %d", len(p))
	}
	got, err := DecodeBody(p)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Encode(), p) {
		t.Fatal("not canonical")
	}
}

func TestBodyRejects(t *testing.T) {
	mod := func(f func(*Body)) []byte { b := sampleBody(); f(&b); return b.Encode() }
	good := sampleBodyBytes()
	for _, tc := range []struct {
		name string
		p    []byte
		want error
	}{
		{"empty", nil, ErrMalformed},
		{"trailing", append(append([]byte{}, good...), 0), ErrMalformed},
		{"short", good[:len(good)-1], ErrMalformed},
		{"huge count", append([]byte{0xff, 0xff, 0xff, 0xff}, good[4:]...), ErrTooLarge},
		{"oversize", make([]byte, MaxBodySize+1), ErrTooLarge},
		{"no prompt", mod(func(b *Body) { b.PromptIDs = nil }), ErrMalformed},
		{"zero max tokens", mod(func(b *Body) { b.MaxTokens = 0 }), ErrMalformed},
		{"max tokens", mod(func(b *Body) { b.MaxTokens = MaxGenTokens + 1 }), ErrTooLarge},
		{"nan temp", mod(func(b *Body) { b.Temperature = float32(math.NaN()) }), ErrMalformed},
		{"neg temp", mod(func(b *Body) { b.Temperature = -1 }), ErrMalformed},
		{"neg zero", mod(func(b *Body) { b.Temperature = float32(math.Copysign(0, -1)) }), ErrMalformed},
		{"top p", mod(func(b *Body) { b.TopP = 1.5 }), ErrMalformed},
		{"top alts", mod(func(b *Body) { b.TopAlts = MaxTopAlts + 1 }), ErrTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := DecodeBody(tc.p); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func FuzzDecodeBody(f *testing.F) {
	f.Add(sampleBodyBytes())
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, p []byte) {
		b, err := DecodeBody(p)
		if err != nil {
			return
		}
		if !bytes.Equal(b.Encode(), p) {
			t.Fatalf("decode/encode not canonical")
		}
	})
}

func TestEnvelope(t *testing.T) {
	k, v := testKey(1)
	_, m := testKey(2)
	body := sampleBodyBytes()
	now := time.UnixMilli(1_700_000_000_123)
	e, err := NewEnvelope(k, 7, m, body, now, bytes.NewReader(bytes.Repeat([]byte{5}, 16)))
	if err != nil {
		t.Fatal(err)
	}
	if e.Validator != v || e.Miner != m || e.TimeMs != now.UnixMilli() || e.Netuid != 7 || e.Version != Version {
		t.Fatalf("fields: %+v", e)
	}
	if err := e.Verify(); err != nil {
		t.Fatal(err)
	}
	if err := e.VerifyBody(body); err != nil {
		t.Fatal(err)
	}
	enc := e.Encode()
	if len(enc) != EnvelopeSize {
		t.Fatalf("size %d", len(enc))
	}
	d, err := DecodeEnvelope(enc)
	if err != nil || d != e {
		t.Fatalf("decode: %v", err)
	}
	// Every single-bit flip outside the signature breaks it.
	for i := 0; i < EnvelopeSize-64; i++ {
		bad := append([]byte{}, enc...)
		bad[i] ^= 1
		d, _ := DecodeEnvelope(bad)
		if d.Verify() == nil {
			t.Fatalf("flip at byte %d still verifies", i)
		}
	}
	if e.VerifyBody(append(body, 0)) == nil {
		t.Fatal("body hash accepts another body")
	}
	if _, err := NewEnvelope(k, 7, m, body, now, bytes.NewReader(nil)); err == nil {
		t.Fatal("short rand accepted")
	}
}

func TestFinal(t *testing.T) {
	mk, m := testKey(3)
	_, other := testKey(4)
	req := [32]byte{1, 2, 3}
	toks := []Token{{ID: 5, LogProb: -0.5, Top: []Alt{{5, -0.5}, {6, -1.5}}}, {ID: 7, LogProb: -2}}
	f := NewFinal(mk, req, toks)
	if err := f.Verify(m, req, toks); err != nil {
		t.Fatal(err)
	}
	r := Result{Tokens: toks, Final: &f}
	if err := r.Verified(m, req); err != nil {
		t.Fatal(err)
	}
	for name, check := range map[string]func() error{
		"other miner":   func() error { return f.Verify(other, req, toks) },
		"other request": func() error { return f.Verify(m, [32]byte{9}, toks) },
		"truncated":     func() error { return f.Verify(m, req, toks[:1]) },
		"changed token": func() error {
			t2 := append([]Token{}, toks...)
			t2[1].ID = 8
			return f.Verify(m, req, t2)
		},
		"changed logprob": func() error {
			t2 := append([]Token{}, toks...)
			t2[1].LogProb = -2.0001
			return f.Verify(m, req, t2)
		},
		"no final": func() error { return (&Result{Tokens: toks}).Verified(m, req) },
	} {
		if err := check(); err == nil {
			t.Errorf("%s: verified", name)
		}
	}
	rej := &Result{Reject: &Reject{Code: CodeBusy}}
	var rr *Reject
	if err := rej.Verified(m, req); !errors.As(err, &rr) || rr.Code != CodeBusy {
		t.Fatalf("reject: %v", err)
	}
}

func TestFrames(t *testing.T) {
	tok := Token{ID: 3, LogProb: -1, Top: []Alt{{3, -1}, {4, float32(math.Inf(-1))}}}
	f := Final{Count: 1, ResultHash: [32]byte{1}, Sig: [64]byte{2}}
	rj := Reject{Code: CodeStale, RetryAfterMs: 10, Message: "too old"}
	var buf []byte
	buf = AppendTokenFrame(buf, &tok)
	buf = AppendFinalFrame(buf, &f)
	buf = AppendRejectFrame(buf, &rj)
	fr := NewFrameReader(bytes.NewReader(buf))
	typ, p, err := fr.Next()
	if err != nil || typ != FrameToken {
		t.Fatal(typ, err)
	}
	if got, err := DecodeToken(p); err != nil || got.ID != 3 || len(got.Top) != 2 {
		t.Fatal(got, err)
	}
	typ, p, err = fr.Next()
	if got, err2 := DecodeFinal(p); err != nil || err2 != nil || typ != FrameFinal || got != f {
		t.Fatal(typ, err, err2)
	}
	typ, p, err = fr.Next()
	if got, err2 := DecodeReject(p); err != nil || err2 != nil || typ != FrameReject || got != rj {
		t.Fatal(typ, err, err2, got)
	}
	if _, _, err := fr.Next(); err == nil {
		t.Fatal("no EOF")
	}
	// Oversized and unknown frames are refused before reading the payload.
	for _, hdr := range [][]byte{{FrameToken, 0xff, 0xff}, {9, 0, 1, 0}, {FrameFinal, 0, 99}} {
		if _, _, err := NewFrameReader(bytes.NewReader(hdr)).Next(); err == nil {
			t.Errorf("%x accepted", hdr)
		}
	}
	long := Reject{Code: CodeBusy, Message: string(bytes.Repeat([]byte("é"), 300))}
	b := AppendRejectFrame(nil, &long)
	if len(b) > MaxResponseFrame {
		t.Fatalf("reject frame %d bytes", len(b))
	}
	if got, err := DecodeReject(b[3:]); err != nil || len(got.Message) > MaxRejectMessage {
		t.Fatal(err)
	}
}

func TestReadRequest(t *testing.T) {
	k, _ := testKey(1)
	_, m := testKey(2)
	body := sampleBodyBytes()
	e, _ := NewEnvelope(k, 1, m, body, time.Now(), bytes.NewReader(make([]byte, 16)))
	req := AppendRequest(nil, &e, body)
	ge, gb, code, err := ReadRequest(bytes.NewReader(req))
	if err != nil || code != CodeOK || ge != e || !bytes.Equal(gb, body) {
		t.Fatal(code, err)
	}
	big := append([]byte{}, req...)
	big[2+EnvelopeSize] = 0xff // body length ≥ 4 GiB-ish
	if _, _, code, _ := ReadRequest(bytes.NewReader(big)); code != CodeTooLarge {
		t.Fatalf("big body: %v", code)
	}
	if _, _, code, _ := ReadRequest(bytes.NewReader([]byte{0xff, 0xff})); code != CodeTooLarge {
		t.Fatalf("big envelope: %v", code)
	}
	if _, _, code, _ := ReadRequest(bytes.NewReader(req[:50])); code != CodeMalformed {
		t.Fatalf("short: %v", code)
	}
}

func FuzzReadRequest(f *testing.F) {
	k, _ := testKey(1)
	_, m := testKey(2)
	body := sampleBodyBytes()
	e, _ := NewEnvelope(k, 1, m, body, time.Unix(0, 0), bytes.NewReader(make([]byte, 16)))
	f.Add(AppendRequest(nil, &e, body))
	be := batchEnvelopes(f, k, m, body, 5)[3]
	f.Add(AppendRequest(nil, &be, body))
	f.Fuzz(func(t *testing.T, p []byte) {
		e, b, code, err := ReadRequest(bytes.NewReader(p))
		if (err == nil) != (code == CodeOK) {
			t.Fatalf("code %v with err %v", code, err)
		}
		if err == nil && !bytes.Equal(AppendRequest(nil, &e, b), p[:2+e.Size()+4+len(b)]) {
			t.Fatal("re-encoding differs")
		}
	})
}

func FuzzResponseFrames(f *testing.F) {
	f.Add(AppendTokenFrame(nil, &Token{ID: 1, LogProb: -1, Top: []Alt{{1, -1}}}))
	f.Add(AppendRejectFrame(nil, &Reject{Code: CodeBusy, Message: "x"}))
	f.Add(AppendFinalFrame(nil, &Final{}))
	f.Add(AppendFinalFrame(nil, &Final{Count: 1, Proof: Proof{Depth: 2, Index: 3, Path: [MaxBatchDepth][32]byte{{1}, {2}}}}))
	f.Fuzz(func(t *testing.T, p []byte) {
		fr := NewFrameReader(bytes.NewReader(p))
		for {
			typ, q, err := fr.Next()
			if err != nil {
				return
			}
			switch typ {
			case FrameToken:
				if tok, err := DecodeToken(q); err == nil && !bytes.Equal(tok.AppendEncode(nil), q) {
					t.Fatal("token not canonical")
				}
			case FrameFinal:
				if fin, err := DecodeFinal(q); err == nil && !bytes.Equal(AppendFinalFrame(nil, &fin)[3:], q) {
					t.Fatal("final not canonical")
				}
			case FrameReject:
				if r, err := DecodeReject(q); err == nil && !bytes.Equal(AppendRejectFrame(nil, &r)[3:], q) {
					t.Fatal("reject not canonical")
				}
			}
		}
	})
}

func TestCodes(t *testing.T) {
	seen := map[string]bool{}
	for c := Code(0); int(c) < NumCodes; c++ {
		s := c.String()
		if seen[s] || s == "" {
			t.Fatalf("code %d name %q", c, s)
		}
		seen[s] = true
	}
	if Code(200).String() != "code-200" {
		t.Fatal(Code(200).String())
	}
}

func sampleBodyBytes() []byte { b := sampleBody(); return b.Encode() }

// The protocol document states these numbers; keep them in step.
func TestDocMatchesConstants(t *testing.T) {
	for name, got := range map[string][2]int{
		"EnvelopeSize":     {EnvelopeSize, 188},
		"MaxEnvelopeSize":  {MaxEnvelopeSize, 381},
		"MaxBatch":         {MaxBatch, 64},
		"MaxBodySize":      {MaxBodySize, 16445},
		"MaxRequestSize":   {MaxRequestSize, 16832},
		"MaxResponseFrame": {MaxResponseFrame, 296},
		"maxFinalPayload":  {maxFinalPayload, 293},
		"bodyFixed":        {bodyFixed, 61},
		"maxTokenPayload":  {maxTokenPayload, 137},
		"finalPayload":     {finalPayload, 100},
		"maxRejectPayload": {maxRejectPayload, 263},
	} {
		if got[0] != got[1] {
			t.Errorf("%s = %d, docs/task-protocol.md says %d", name, got[0], got[1])
		}
	}
	doc, err := os.ReadFile("../docs/task-protocol.md")
	if err != nil {
		t.Fatal(err)
	}
	for c := Code(0); int(c) < NumCodes; c++ {
		row := fmt.Sprintf("| %d | `%s` |", c, c)
		if !strings.Contains(string(doc), row) {
			t.Errorf("docs/task-protocol.md has no row %q", row)
		}
	}
}

// BenchmarkCrypto is the per-task signature floor: what one 1-token task
// costs in ed25519 and SHA-256 on each side.
func BenchmarkCrypto(b *testing.B) {
	k, _ := testKey(1)
	mk, m := testKey(2)
	body := sampleBodyBytes()
	rnd := bytes.NewReader(make([]byte, 1<<30))
	e, _ := NewEnvelope(k, 1, m, body, time.Now(), rnd)
	toks := []Token{{ID: 1, LogProb: -1}}
	f := NewFinal(mk, e.Hash(), toks)
	b.Run("client-sign-envelope", func(b *testing.B) {
		for b.Loop() {
			rnd.Seek(0, 0)
			NewEnvelope(k, 1, m, body, time.Now(), rnd)
		}
	})
	b.Run("miner-verify-envelope", func(b *testing.B) {
		for b.Loop() {
			e.VerifyBody(body)
			e.Verify()
		}
	})
	b.Run("miner-sign-final", func(b *testing.B) {
		for b.Loop() {
			NewFinal(mk, e.Hash(), toks)
		}
	})
	b.Run("client-verify-final", func(b *testing.B) {
		for b.Loop() {
			f.Verify(m, e.Hash(), toks)
		}
	})
}
