package gateway

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"taobox/chain/types"
	"taobox/validator"
)

func TestRate(t *testing.T) {
	var l RateLimits
	l.defaults()
	tao := uint64(types.RaoPerTAO)
	for _, tc := range []struct {
		stake       uint64
		rate, burst float64
	}{
		{0, 0, 0},
		{1, 1.0 / 60 / float64(tao), 1},
		{tao, 1.0 / 60, 1},
		{30 * tao, 0.5, 30},
		{60 * tao, 1, 60},
		{120 * tao, 2, 60},
		{600 * tao, 10, 60},
		{1e6 * tao, 10, 60},
	} {
		r, b := l.Rate(tc.stake)
		if math.Abs(r-tc.rate) > 1e-12 || b != tc.burst {
			t.Errorf("stake %d: rate %v burst %v, want %v %v", tc.stake, r, b, tc.rate, tc.burst)
		}
	}
}

func TestLimiterTake(t *testing.T) {
	l := limiter{buckets: map[types.AccountID]*bucket{}}
	l.cfg.defaults()
	id := idN(1)
	stake := uint64(2 * types.RaoPerTAO) // 2 a minute, bursts of 2
	now := t0
	for i := range 2 {
		if ok, _ := l.take(id, stake, now); !ok {
			t.Fatalf("request %d of a full bucket refused", i)
		}
	}
	ok, wait := l.take(id, stake, now)
	if ok || wait != 30*time.Second {
		t.Fatalf("empty bucket: ok %v wait %v, want a 30 s wait", ok, wait)
	}
	now = now.Add(29 * time.Second)
	if ok, wait = l.take(id, stake, now); ok || wait != time.Second {
		t.Fatalf("after 29 s: ok %v wait %v", ok, wait)
	}
	now = now.Add(time.Second)
	if ok, _ = l.take(id, stake, now); !ok {
		t.Fatal("after 30 s a token is back")
	}
	// another account has its own bucket
	if ok, _ = l.take(idN(2), stake, now); !ok {
		t.Fatal("a second account shares the first's bucket")
	}
	// no stake, no service
	if ok, _ = l.take(idN(3), 0, now); ok {
		t.Fatal("zero stake admitted")
	}
	// a clock that steps back takes nothing back
	if ok, _ = l.take(id, stake, now.Add(-time.Hour)); ok {
		t.Fatal("a clock step back refilled the bucket")
	}
	// stake dropping shrinks the bucket at once
	big := uint64(600 * types.RaoPerTAO)
	b := idN(4)
	l.take(b, big, now)
	if got := l.buckets[b].tokens; got != 59 {
		t.Fatalf("%v tokens after one of 60", got)
	}
	if ok, _ = l.take(b, types.RaoPerTAO, now); !ok || l.buckets[b].tokens != 0 {
		t.Fatalf("a lowered stake: ok %v tokens %v, want the bucket cut to 1 and spent", ok, l.buckets[b].tokens)
	}
}

func TestLimiterEvict(t *testing.T) {
	l := limiter{buckets: map[types.AccountID]*bucket{}}
	l.cfg.MaxAccounts = 2
	l.cfg.defaults()
	stake := uint64(6 * types.RaoPerTAO) // 0.1/s, bursts of 6
	l.take(idN(1), stake, t0)
	l.take(idN(2), stake, t0.Add(time.Second))
	// a third account: neither bucket is full again, so the idlest goes
	l.take(idN(3), stake, t0.Add(2*time.Second))
	if _, ok := l.buckets[idN(1)]; ok || len(l.buckets) != 2 {
		t.Fatalf("buckets %v: the idlest should have been dropped", len(l.buckets))
	}
	// once full again, every such bucket goes
	l.take(idN(4), stake, t0.Add(time.Minute))
	if len(l.buckets) != 1 {
		t.Fatalf("%d buckets, want only the new one", len(l.buckets))
	}
}

func TestConfigValidate(t *testing.T) {
	var c Config
	err := c.Validate()
	if err == nil {
		t.Fatal("an empty config validated")
	}
	for _, want := range []string{"Key", "Chain", "Scores", "Tokenizer", "ContextLen", "Stake"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q does not name %s", err, want)
		}
	}
	_, tok := loadTiny(t)
	c = Config{Key: keyN(0), Chain: newMemChain(t), Scores: func() []validator.Record { return nil }, Tokenizer: tok, ContextLen: 128,
		Stake: func(context.Context, types.AccountID) (uint64, error) { return 0, nil }}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	c.Window = -time.Second
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "negative") {
		t.Fatalf("a negative window: %v", err)
	}
}
