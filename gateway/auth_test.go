package gateway

import (
	"bytes"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"taobox/chain/types"
)

var t0 = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

// testGateway is the gateway identity the unit tests sign for.
var testGateway = idN(kValidator)

func signedHeader(t testing.TB, k int, body []byte, now time.Time, nonce string) http.Header {
	r, _ := http.NewRequest("POST", "http://gw/v1/chat/completions?x=1", bytes.NewReader(body))
	if err := Sign(r, body, testGateway, keyN(k), now, nonce); err != nil {
		t.Fatal(err)
	}
	return r.Header
}

func TestSignVerify(t *testing.T) {
	body := []byte(`{"messages":[]}`)
	h := signedHeader(t, 7, body, t0, "abcdefghijklmnop")
	a, err := ParseAuth(h)
	if err != nil {
		t.Fatal(err)
	}
	if a.Account != idN(7) || a.Gateway != testGateway || a.TimeMs != t0.UnixMilli() || a.Nonce != "abcdefghijklmnop" {
		t.Fatalf("%+v", a)
	}
	if err := a.For(testGateway); err != nil {
		t.Fatal(err)
	}
	if err := a.For(idN(8)); !errors.Is(err, ErrWrongGateway) {
		t.Errorf("For another gateway: %v, want ErrWrongGateway", err)
	}
	if err := a.Verify("POST", "/v1/chat/completions?x=1", body); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, method, uri string
		body              []byte
	}{
		{"other body", "POST", "/v1/chat/completions?x=1", []byte(`{"messages":[1]}`)},
		{"other path", "POST", "/v1/completions?x=1", body},
		{"other query", "POST", "/v1/chat/completions?x=2", body},
		{"other method", "PUT", "/v1/chat/completions?x=1", body},
	} {
		if err := a.Verify(tc.method, tc.uri, tc.body); !errors.Is(err, ErrBadSignature) {
			t.Errorf("%s: %v, want ErrBadSignature", tc.name, err)
		}
	}
	b := a
	b.TimeMs++
	if err := b.Verify("POST", "/v1/chat/completions?x=1", body); !errors.Is(err, ErrBadSignature) {
		t.Errorf("other time: %v", err)
	}
	b = a
	b.Nonce = "abcdefghijklmnoq"
	if err := b.Verify("POST", "/v1/chat/completions?x=1", body); !errors.Is(err, ErrBadSignature) {
		t.Errorf("other nonce: %v", err)
	}
	b = a
	b.Account = idN(8)
	if err := b.Verify("POST", "/v1/chat/completions?x=1", body); !errors.Is(err, ErrBadSignature) {
		t.Errorf("other account: %v", err)
	}
	// The gateway is signed: claiming another one in the header breaks
	// the signature (so a replay cannot be re-addressed).
	b = a
	b.Gateway = idN(8)
	if err := b.Verify("POST", "/v1/chat/completions?x=1", body); !errors.Is(err, ErrBadSignature) {
		t.Errorf("other gateway: %v", err)
	}
	r, _ := http.NewRequest("POST", "http://gw/v1/x", nil)
	if err := Sign(r, nil, types.AccountID{}, keyN(7), t0, "abcdefghijklmnop"); err == nil {
		t.Error("Sign without a gateway identity succeeded")
	}
}

// TestSigningBytesUnambiguous: moving bytes between method, URI and nonce
// changes the signed bytes.
func TestSigningBytesUnambiguous(t *testing.T) {
	a := SigningBytes(testGateway, "POST", "/v1/x", nil, 5, "nonce-nonce-nonce-1")
	b := SigningBytes(testGateway, "POS", "T/v1/x", nil, 5, "nonce-nonce-nonce-1")
	c := SigningBytes(testGateway, "POST", "/v1/xn", nil, 5, "once-nonce-nonce-1")
	d := SigningBytes(idN(8), "POST", "/v1/x", nil, 5, "nonce-nonce-nonce-1")
	if bytes.Equal(a, b) || bytes.Equal(a, c) || bytes.Equal(a, d) || !bytes.HasPrefix(a, []byte("taobox-openai/2 request\x00")) {
		t.Fatal("signing bytes are ambiguous, do not bind the gateway, or lack the domain prefix")
	}
}

func TestParseAuth(t *testing.T) {
	good := signedHeader(t, 3, nil, t0, "0123456789abcdef")
	set := func(k, v string) http.Header {
		h := good.Clone()
		if v == "" {
			h.Del(k)
		} else {
			h.Set(k, v)
		}
		return h
	}
	for _, tc := range []struct {
		name string
		h    http.Header
		want error
	}{
		{"good", good, nil},
		{"no headers", http.Header{}, ErrUnsigned},
		{"no account", set(HeaderAccount, ""), ErrUnsigned},
		{"no gateway", set(HeaderGateway, ""), ErrUnsigned},
		{"bad gateway", set(HeaderGateway, "5notanaddress"), ErrBadHeader},
		{"long gateway", set(HeaderGateway, strings.Repeat("5", 65)), ErrBadHeader},
		{"no timestamp", set(HeaderTimestamp, ""), ErrUnsigned},
		{"no nonce", set(HeaderNonce, ""), ErrUnsigned},
		{"no signature", set(HeaderSignature, ""), ErrUnsigned},
		{"bad address", set(HeaderAccount, "5notanaddress"), ErrBadHeader},
		{"hex account", set(HeaderAccount, strings.Repeat("ab", 32)), ErrBadHeader},
		{"long account", set(HeaderAccount, strings.Repeat("5", 65)), ErrBadHeader},
		{"negative time", set(HeaderTimestamp, "-5"), ErrBadHeader},
		{"plus time", set(HeaderTimestamp, "+5"), ErrBadHeader},
		{"float time", set(HeaderTimestamp, "1.5"), ErrBadHeader},
		{"overflow time", set(HeaderTimestamp, "99999999999999999999"), ErrBadHeader},
		{"short nonce", set(HeaderNonce, "abc"), ErrBadHeader},
		{"long nonce", set(HeaderNonce, strings.Repeat("a", 65)), ErrBadHeader},
		{"nonce charset", set(HeaderNonce, "abcdefghijklmno/"), ErrBadHeader},
		{"nonce space", set(HeaderNonce, "abcdefgh ijklmnop"), ErrBadHeader},
		{"short signature", set(HeaderSignature, "abcd"), ErrBadHeader},
		{"signature not hex", set(HeaderSignature, strings.Repeat("zz", 64)), ErrBadHeader},
	} {
		_, err := ParseAuth(tc.h)
		if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
}

func TestFresh(t *testing.T) {
	w := 30 * time.Second
	for _, tc := range []struct {
		skew time.Duration
		ok   bool
	}{{0, true}, {w, true}, {-w, true}, {w + time.Millisecond, false}, {-w - time.Millisecond, false}, {time.Hour, false}} {
		a := Auth{TimeMs: t0.Add(tc.skew).UnixMilli()}
		if err := a.Fresh(t0, w); (err == nil) != tc.ok || err != nil && !errors.Is(err, ErrStale) {
			t.Errorf("skew %v: %v", tc.skew, err)
		}
	}
}

func TestReplayCache(t *testing.T) {
	c := replayCache{max: 3, seen: map[string]time.Time{}}
	a := func(k int, nonce string) *Auth { return &Auth{Account: idN(k), Nonce: nonce} }
	exp := t0.Add(30 * time.Second)
	if err := c.add(a(1, "n1"), t0, exp); err != nil {
		t.Fatal(err)
	}
	if err := c.add(a(1, "n1"), t0.Add(29*time.Second), exp); !errors.Is(err, ErrReplay) {
		t.Fatalf("replay within the window: %v", err)
	}
	if err := c.add(a(2, "n1"), t0, exp); err != nil {
		t.Fatalf("same nonce, other account: %v", err)
	}
	if err := c.add(a(1, "n2"), t0, exp.Add(10*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := c.add(a(1, "n3"), t0, exp); !errors.Is(err, ErrReplayFull) {
		t.Fatalf("full of live nonces: %v", err)
	}
	// at exp the first two expire and make room; n2 lives on
	if err := c.add(a(1, "n3"), exp, exp.Add(30*time.Second)); err != nil {
		t.Fatal(err)
	}
	if len(c.seen) != 2 {
		t.Fatalf("%d nonces held, want 2 after pruning", len(c.seen))
	}
	if err := c.add(a(1, "n2"), exp, exp); !errors.Is(err, ErrReplay) {
		t.Fatalf("n2 is still live: %v", err)
	}
	if err := c.add(a(1, "n1"), exp, exp.Add(time.Second)); err != nil {
		t.Fatalf("an expired nonce may come back (its timestamp is stale by now): %v", err)
	}
}

// FuzzParseAuth: the parser never panics, accepts only what it can
// re-encode exactly, and a signature over random headers never verifies.
func FuzzParseAuth(f *testing.F) {
	h := signedHeader(f, 3, nil, t0, "0123456789abcdef")
	f.Add(h.Get(HeaderAccount), h.Get(HeaderGateway), h.Get(HeaderTimestamp), h.Get(HeaderNonce), h.Get(HeaderSignature))
	f.Add("", "", "", "", "")
	f.Add("5notanaddress", "5x", "-1", "short", "zz")
	f.Add(types.SS58Encode(idN(1)), types.SS58Encode(idN(2)), "18446744073709551615", strings.Repeat("a", 64), strings.Repeat("00", 64))
	f.Fuzz(func(t *testing.T, acct, gw, ts, nonce, sig string) {
		hh := http.Header{}
		hh.Set(HeaderAccount, acct)
		hh.Set(HeaderGateway, gw)
		hh.Set(HeaderTimestamp, ts)
		hh.Set(HeaderNonce, nonce)
		hh.Set(HeaderSignature, sig)
		a, err := ParseAuth(hh)
		if err != nil {
			if !errors.Is(err, ErrUnsigned) && !errors.Is(err, ErrBadHeader) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		if a.TimeMs < 0 || len(a.Nonce) < MinNonceLen || len(a.Nonce) > MaxNonceLen {
			t.Fatalf("accepted %+v", a)
		}
		if strconv.FormatInt(a.TimeMs, 10) != strings.TrimLeft(hh.Get(HeaderTimestamp), "0") && a.TimeMs != 0 {
			t.Fatalf("timestamp %q parsed as %d", ts, a.TimeMs)
		}
		if types.SS58Encode(a.Account) != hh.Get(HeaderAccount) || types.SS58Encode(a.Gateway) != hh.Get(HeaderGateway) {
			t.Fatalf("addresses %q, %q parsed as %s, %s", acct, gw, types.SS58Encode(a.Account), types.SS58Encode(a.Gateway))
		}
		if hh.Get(HeaderSignature) != h.Get(HeaderSignature) && a.Verify("POST", "/v1/completions", nil) == nil {
			t.Fatal("a made-up signature verified")
		}
	})
}
