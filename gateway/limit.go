package gateway

import (
	"math"
	"time"

	"taobox/chain/types"
)

// Rate limits: one token bucket per account, sized by its stake.
//
//	rate  = min(MaxRate, PerTAOPerMinute × stake / 1 TAO / 60)   requests per second
//	burst = clamp(rate × BurstWindow, 1, MaxBurst)               requests
//
// With the defaults (PerTAOPerMinute 1, BurstWindow 60 s, MaxRate 10/s,
// MaxBurst 60): 1 TAO staked buys one request a minute, 60 TAO one a
// second with bursts of 60, and 600 TAO or more the cap of 10 a second.
// Each admitted request costs one token, whatever its length (max_tokens is
// capped by the model's context).

// RateLimits configures the per-account buckets. Zero fields take the
// defaults above.
type RateLimits struct {
	PerTAOPerMinute float64       // requests per minute per TAO of stake; default 1
	BurstWindow     time.Duration // seconds of rate a full bucket holds; default 60 s
	MaxRate         float64       // requests per second, at most; default 10
	MaxBurst        float64       // bucket size, at most; default 60
	MaxAccounts     int           // buckets held; full ones are dropped first; default 65536
}

func (l *RateLimits) defaults() {
	if l.PerTAOPerMinute <= 0 {
		l.PerTAOPerMinute = 1
	}
	if l.BurstWindow <= 0 {
		l.BurstWindow = time.Minute
	}
	if l.MaxRate <= 0 {
		l.MaxRate = 10
	}
	if l.MaxBurst <= 0 {
		l.MaxBurst = 60
	}
	if l.MaxAccounts <= 0 {
		l.MaxAccounts = 1 << 16
	}
}

// Rate returns the refill rate (requests per second) and bucket size for
// stake (rao). Zero stake gives zero rate.
func (l *RateLimits) Rate(stake uint64) (rate, burst float64) {
	rate = min(l.MaxRate, l.PerTAOPerMinute*float64(stake)/float64(types.RaoPerTAO)/60)
	if rate <= 0 {
		return 0, 0
	}
	burst = min(l.MaxBurst, max(1, rate*l.BurstWindow.Seconds()))
	return rate, burst
}

type bucket struct {
	tokens      float64
	at          time.Time
	rate, burst float64 // as of the last take
}

// limiter holds the buckets. Not safe for concurrent use; the caller locks.
type limiter struct {
	cfg     RateLimits
	buckets map[types.AccountID]*bucket
}

// take spends one token of id's bucket at now, for an account with stake.
// It reports whether the request may go ahead and, if not, how long until
// a token is there. A new account starts with a full bucket.
func (l *limiter) take(id types.AccountID, stake uint64, now time.Time) (bool, time.Duration) {
	rate, burst := l.cfg.Rate(stake)
	if rate == 0 {
		return false, 0
	}
	b := l.buckets[id]
	if b == nil {
		if len(l.buckets) >= l.cfg.MaxAccounts {
			l.evict(now)
		}
		b = &bucket{tokens: burst, at: now}
		l.buckets[id] = b
	}
	if dt := now.Sub(b.at).Seconds(); dt > 0 {
		b.tokens = min(burst, b.tokens+dt*rate)
		b.at = now
	}
	b.tokens = min(b.tokens, burst) // the stake may have dropped
	b.rate, b.burst = rate, burst
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	wait := time.Duration(math.Ceil((1 - b.tokens) / rate * float64(time.Second)))
	return false, wait
}

// evict drops the buckets that are full again (they would start full
// anyway) and, if that frees nothing, the one idle longest.
func (l *limiter) evict(now time.Time) {
	var oldest types.AccountID
	var oldestAt time.Time
	n := len(l.buckets)
	for id, b := range l.buckets {
		if b.tokens+now.Sub(b.at).Seconds()*b.rate >= b.burst {
			delete(l.buckets, id)
			continue
		}
		if oldestAt.IsZero() || b.at.Before(oldestAt) {
			oldest, oldestAt = id, b.at
		}
	}
	if len(l.buckets) == n {
		delete(l.buckets, oldest)
	}
}
