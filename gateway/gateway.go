// Package gateway is a validator's OpenAI-compatible HTTP endpoint: it lets
// holders of stake use what the subnet's miners serve ("TAO grants access
// to the network's resources").
//
// POST /v1/completions and POST /v1/chat/completions take OpenAI's request
// shapes, tokenize the prompt with the validator's tokenizer, and send it
// as a task (package task, signed by the validator's hotkey exactly like
// the validator's own tasks) to the best-scoring serving miners of the
// subnet, as the validator's moving-average scores rank them (Rank). A
// miner that fails, times out, is busy or sends an answer whose final frame
// does not verify is skipped for the next, until MaxAttempts. Answers come
// back whole or as server-sent events, one chunk per token, and carry a
// "taobox" field naming the miner (uid, hotkey) and its signed final frame.
// GET /v1/models lists the subnet's model.
//
// Callers sign each request with an ed25519 key (auth.go: five X-Taobox-*
// headers over the gateway's hotkey, method, URI, body hash, timestamp and
// nonce; ±Window, a replay cache). A request signed for another gateway
// is refused (401 wrong_gateway), so it cannot be replayed across
// validators. The key must hold stake: the larger of its total stake as
// a coldkey and the total stake on it as a hotkey (Config.Stake, plus the
// subnet's metagraph). Without stake a request gets 403; with it, a token
// bucket whose rate is proportional to the stake (limit.go) answers 429
// with Retry-After when spent. docs/openai.md is the user's guide.
//
// The package is an adapter: its pure parts (auth.go's parser and signing
// bytes, limit.go's buckets, route.go's ranking, openai.go's request
// checks, chat template, stop strings and detokenizer) take time as input;
// gateway.go holds the HTTP server; miners are asked through task.Client
// (QueryWith streams each token on as it arrives).
package gateway

import (
	"context"
	"crypto/ed25519"
	crand "crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"taobox/chain/state"
	"taobox/chain/types"
	"taobox/model"
	"taobox/task"
	"taobox/validator"
)

// Config configures a Gateway. Zero values take the documented defaults;
// the fields marked required have none.
type Config struct {
	// Key is the validator's hotkey; it signs the tasks. Required.
	Key    ed25519.PrivateKey
	Netuid uint16
	// Chain gives the subnet's metagraph (endpoints, hotkeys, stake).
	// Required.
	Chain validator.Chain
	// Scores returns the validator's current scores (Validator.Scores).
	// Required.
	Scores func() []validator.Record
	// Tokenizer is the served model's tokenizer. Required.
	Tokenizer *model.Tokenizer
	// ModelHash is the SHA-256 of the GGUF file miners serve.
	ModelHash [32]byte
	// ContextLen is the model's context in tokens (prompt + answer).
	// Required.
	ContextLen int
	// ModelName is the model id of the API; default "taobox-" and the first
	// 12 hex digits of ModelHash. Requests may name it, the full hash in
	// hex, or nothing.
	ModelName string
	// ChatTemplate is the GGUF tokenizer.chat_template ("" if none); only
	// ChatML is recognised, anything else gets role-prefixed lines.
	ChatTemplate string
	// Stake returns an account's stake in rao as the chain knows it: its
	// total stake as a coldkey, and as a hotkey where known (StateStake
	// does both). The gateway takes the larger of this and the account's
	// stake as a hotkey in the subnet's metagraph. Required.
	Stake func(ctx context.Context, id types.AccountID) (uint64, error)
	// MinStake is the least stake (rao) a caller needs; default 1.
	MinStake uint64
	// Limits sizes the per-account token buckets (see limit.go).
	Limits RateLimits
	// Window is how far a request's timestamp may be from this server's
	// clock, either way; default 30 s. Nonces are remembered as long.
	Window time.Duration
	// ReplayCache is the most nonces remembered; default 65536. When full
	// of live nonces, requests get 503.
	ReplayCache int
	// MaxBody caps a request body in bytes; default 1 MiB.
	MaxBody int64
	// MaxInFlight bounds the requests being answered at once; more get
	// 503. Default 64.
	MaxInFlight int
	// MaxAttempts is the most miners tried per request; default 3.
	MaxAttempts int
	// FirstToken bounds the wait for a miner's first frame; default 15 s.
	FirstToken time.Duration
	// Timeout bounds a whole request; default 5 min.
	Timeout time.Duration
	// DialTimeout bounds a QUIC handshake with a miner; default 3 s.
	DialTimeout time.Duration
	// CacheTTL is how long a metagraph or a stake lookup is reused;
	// default 6 s.
	CacheTTL time.Duration
	Logger   *slog.Logger
	// Now is the clock (signatures, buckets, caches, task envelopes); nil:
	// time.Now.
	Now func() time.Time
	// Rand supplies nonces, seeds and ids; nil: crypto/rand.
	Rand io.Reader
}

// Validate reports every required field that is missing and every value
// out of range.
func (c *Config) Validate() error {
	var errs []error
	if len(c.Key) != ed25519.PrivateKeySize {
		errs = append(errs, errors.New("Key: the validator's ed25519 hotkey is required"))
	}
	if c.Chain == nil {
		errs = append(errs, errors.New("Chain is required"))
	}
	if c.Scores == nil {
		errs = append(errs, errors.New("Scores is required (Validator.Scores)"))
	}
	if c.Tokenizer == nil {
		errs = append(errs, errors.New("Tokenizer is required: the model file must have one"))
	}
	if c.ContextLen <= 1 {
		errs = append(errs, fmt.Errorf("ContextLen %d: the model's context is required", c.ContextLen))
	}
	if c.Stake == nil {
		errs = append(errs, errors.New("Stake is required"))
	}
	if c.MaxBody < 0 || c.MaxInFlight < 0 || c.MaxAttempts < 0 || c.ReplayCache < 0 || c.Window < 0 || c.Timeout < 0 || c.FirstToken < 0 || c.CacheTTL < 0 || c.DialTimeout < 0 {
		errs = append(errs, errors.New("limits and durations must not be negative"))
	}
	if len(errs) > 0 {
		return fmt.Errorf("gateway: %w", errors.Join(errs...))
	}
	return nil
}

func (c *Config) defaults() {
	if c.ModelName == "" {
		c.ModelName = "taobox-" + hex.EncodeToString(c.ModelHash[:6])
	}
	if c.MinStake == 0 {
		c.MinStake = 1
	}
	c.Limits.defaults()
	d := func(p *time.Duration, v time.Duration) {
		if *p == 0 {
			*p = v
		}
	}
	d(&c.Window, 30*time.Second)
	d(&c.FirstToken, 15*time.Second)
	d(&c.Timeout, 5*time.Minute)
	d(&c.DialTimeout, 3*time.Second)
	d(&c.CacheTTL, 6*time.Second)
	i := func(p *int, v int) {
		if *p == 0 {
			*p = v
		}
	}
	i(&c.ReplayCache, 1<<16)
	i(&c.MaxInFlight, 64)
	i(&c.MaxAttempts, 3)
	if c.MaxBody == 0 {
		c.MaxBody = 1 << 20
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Rand == nil {
		c.Rand = crand.Reader
	}
}

// StateStake is Config.Stake over a chain state: the larger of id's total
// stake as a coldkey (over all hotkeys) and the total stake on id as a
// hotkey.
func StateStake(r state.Reader, id types.AccountID) (uint64, error) {
	a, err := state.QueryAccount(r, id)
	if err != nil {
		return 0, err
	}
	_, total, err := state.QueryStake(r, id, id)
	if err != nil {
		return 0, err
	}
	return max(a.Staked, total), nil
}

// Gateway serves the API. Its methods are safe for concurrent use.
type Gateway struct {
	cfg    Config
	self   types.AccountID
	tmpl   chatTemplate
	mc     *task.Client
	sem    chan struct{}
	mux    *http.ServeMux
	models ModelList
	m      *metrics

	mu     sync.Mutex // guards the fields below
	replay replayCache
	lim    limiter
	stakes map[types.AccountID]stakeEntry
	mg     *state.Metagraph
	mgAt   time.Time
}

type stakeEntry struct {
	stake uint64
	at    time.Time
}

// maxStakeCache bounds the stake cache; it is emptied when full.
const maxStakeCache = 1 << 16

// New checks cfg and returns a gateway. Close releases its QUIC socket.
func New(cfg Config) (*Gateway, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.defaults()
	g := &Gateway{
		cfg:    cfg,
		self:   types.AccountIDFromPrivateKey(cfg.Key),
		tmpl:   pickTemplate(cfg.ChatTemplate, cfg.Tokenizer),
		sem:    make(chan struct{}, cfg.MaxInFlight),
		replay: replayCache{max: cfg.ReplayCache, seen: map[string]time.Time{}},
		lim:    limiter{cfg: cfg.Limits, buckets: map[types.AccountID]*bucket{}},
		stakes: map[types.AccountID]stakeEntry{},
		m:      newMetrics(),
	}
	// One task client: one QUIC connection per miner, a stream per
	// request; the request's context bounds each query (Timeout).
	g.mc = task.NewClient(cfg.Key, cfg.Netuid, task.ClientOptions{
		DialTimeout: cfg.DialTimeout, Timeout: cfg.Timeout, IdleTimeout: 30 * time.Second, Now: cfg.Now, Rand: cfg.Rand,
	})
	g.models = ModelList{Object: "list", Data: []Model{{
		ID: cfg.ModelName, Object: "model", OwnedBy: fmt.Sprintf("taobox subnet %d", cfg.Netuid),
		SHA256: hex.EncodeToString(cfg.ModelHash[:]), Netuid: cfg.Netuid, Context: cfg.ContextLen,
	}}}
	g.mux = http.NewServeMux()
	g.mux.HandleFunc("POST /v1/completions", g.generateHandler(false))
	g.mux.HandleFunc("POST /v1/chat/completions", g.generateHandler(true))
	g.mux.HandleFunc("GET /v1/models", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, http.StatusOK, g.models) })
	g.mux.HandleFunc("GET /v1/models/{id}", func(w http.ResponseWriter, r *http.Request) {
		if !g.modelOK(r.PathValue("id")) {
			g.fail(w, r, http.StatusNotFound, "not_found_error", "model_not_found", "model", fmt.Sprintf("no model %q here; GET /v1/models lists %q", r.PathValue("id"), g.cfg.ModelName))
			return
		}
		writeJSON(w, http.StatusOK, g.models.Data[0])
	})
	g.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		g.fail(w, r, http.StatusNotFound, "invalid_request_error", "unknown_url", "", fmt.Sprintf("no endpoint %s %s; this gateway serves POST /v1/completions, POST /v1/chat/completions and GET /v1/models", r.Method, r.URL.Path))
	})
	return g, nil
}

// Template names the chat template in use: "plain" or "chatml".
func (g *Gateway) Template() string { return g.tmpl.String() }

// ModelName is the model id the API serves.
func (g *Gateway) ModelName() string { return g.cfg.ModelName }

// Handler is the API as an http.Handler.
// Every answer carries X-Taobox-Gateway, this gateway's hotkey (the
// identity requests must be signed for; Client.Identify reads it).
func (g *Gateway) Handler() http.Handler {
	self := types.SS58Encode(g.self)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(HeaderGateway, self)
		g.mux.ServeHTTP(w, r)
	})
}

// ID is the gateway's identity: the validator hotkey (Config.Key) that
// callers sign their requests for (X-Taobox-Gateway).
func (g *Gateway) ID() types.AccountID { return g.self }

// Serve answers HTTP on ln until ctx ends, then shuts down (waiting up to
// 5 s for requests in flight) and returns nil. The server has header and
// read timeouts but no write timeout (streams are long); Config.Timeout
// bounds each request.
func (g *Gateway) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           g.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ErrorLog:          slog.NewLogLogger(g.cfg.Logger.Handler(), slog.LevelDebug),
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return fmt.Errorf("gateway: serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
	}
	<-done
	return nil
}

// Close closes the gateway's connections to miners.
func (g *Gateway) Close() error { return g.mc.Close() }

// Candidates ranks the miners requests would go to now (Rank over the
// cached metagraph and the current scores).
func (g *Gateway) Candidates() ([]Candidate, error) {
	mg, err := g.metagraph()
	if err != nil {
		return nil, err
	}
	return Rank(mg, g.cfg.Scores(), g.self), nil
}

func (g *Gateway) metagraph() (*state.Metagraph, error) {
	now := g.cfg.Now()
	g.mu.Lock()
	mg, at := g.mg, g.mgAt
	g.mu.Unlock()
	if mg != nil && now.Sub(at) < g.cfg.CacheTTL && !now.Before(at) {
		return mg, nil
	}
	fresh, err := g.cfg.Chain.Metagraph(g.cfg.Netuid)
	if err != nil {
		if mg != nil {
			g.cfg.Logger.Warn("gateway: metagraph refresh failed; using the last one", "err", err)
			return mg, nil
		}
		return nil, fmt.Errorf("metagraph of subnet %d: %w", g.cfg.Netuid, err)
	}
	g.mu.Lock()
	g.mg, g.mgAt = fresh, now
	g.mu.Unlock()
	return fresh, nil
}

// stake applies the stake rule to id, through the cache.
func (g *Gateway) stake(ctx context.Context, id types.AccountID) (uint64, error) {
	now := g.cfg.Now()
	g.mu.Lock()
	e, ok := g.stakes[id]
	g.mu.Unlock()
	if ok && now.Sub(e.at) < g.cfg.CacheTTL && !now.Before(e.at) {
		return e.stake, nil
	}
	s, err := g.cfg.Stake(ctx, id)
	if err != nil {
		return 0, err
	}
	if mg, err := g.metagraph(); err == nil {
		for i := range mg.Neurons {
			if mg.Neurons[i].Hotkey == id {
				s = max(s, mg.Neurons[i].Stake)
			}
		}
	}
	g.mu.Lock()
	if len(g.stakes) >= maxStakeCache {
		clear(g.stakes)
	}
	g.stakes[id] = stakeEntry{s, now}
	g.mu.Unlock()
	return s, nil
}

func (g *Gateway) modelOK(name string) bool {
	return name == "" || name == g.cfg.ModelName || strings.EqualFold(name, hex.EncodeToString(g.cfg.ModelHash[:]))
}

// httpErr is a failure with its HTTP status and OpenAI error type and code.
type httpErr struct {
	status      int
	typ, code   string
	param       string
	msg         string
	retryAfterS int
}

func (e *httpErr) Error() string { return e.msg }

// authenticate checks the signed headers, reads the body and applies the
// stake and rate rules. It returns the body and the caller.
func (g *Gateway) authenticate(w http.ResponseWriter, r *http.Request) ([]byte, types.AccountID, *httpErr) {
	unauth := func(code string, err error) *httpErr {
		return &httpErr{status: http.StatusUnauthorized, typ: "authentication_error", code: code, msg: err.Error()}
	}
	a, err := ParseAuth(r.Header)
	switch {
	case errors.Is(err, ErrUnsigned):
		return nil, a.Account, unauth("unsigned", err)
	case err != nil:
		return nil, a.Account, unauth("bad_auth_header", err)
	}
	now := g.cfg.Now()
	if err := a.Fresh(now, g.cfg.Window); err != nil {
		return nil, a.Account, unauth("stale_timestamp", err)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, g.cfg.MaxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, a.Account, &httpErr{status: http.StatusRequestEntityTooLarge, typ: "invalid_request_error", code: "body_too_large", msg: fmt.Sprintf("request body over %d bytes", mbe.Limit)}
		}
		return nil, a.Account, &httpErr{status: http.StatusBadRequest, typ: "invalid_request_error", code: "body_read", msg: "reading the body: " + err.Error()}
	}
	if err := a.Verify(r.Method, r.URL.RequestURI(), body); err != nil {
		return nil, a.Account, unauth("bad_signature", err)
	}
	// Signed for another validator's gateway: a replay across gateways (or
	// a misaddressed caller). Refused before the stake lookup and the
	// replay cache, like a bad signature.
	if err := a.For(g.self); err != nil {
		return nil, a.Account, unauth("wrong_gateway", err)
	}
	// A replay is refused before the stake lookup; the nonce is stored only
	// once the caller proved stake, so keys without stake cannot fill the
	// replay cache and lock out everyone else.
	g.mu.Lock()
	err = g.replay.check(&a, now)
	g.mu.Unlock()
	if err != nil {
		return nil, a.Account, unauth("replayed_nonce", err)
	}
	st, err := g.stake(r.Context(), a.Account)
	if err != nil {
		g.cfg.Logger.Error("gateway: stake lookup failed", "account", a.Account, "err", err)
		return nil, a.Account, &httpErr{status: http.StatusServiceUnavailable, typ: "api_error", code: "chain_unavailable", msg: "could not look up the caller's stake: " + err.Error(), retryAfterS: 5}
	}
	if st < g.cfg.MinStake {
		return nil, a.Account, &httpErr{status: http.StatusForbidden, typ: "permission_error", code: "insufficient_stake",
			msg: fmt.Sprintf("account %s holds %s of stake; this endpoint needs at least %s. Stake TAO with this key as coldkey (taobox tx stake add) or to it as a hotkey, then retry", types.SS58Encode(a.Account), fmtTAO(st), fmtTAO(g.cfg.MinStake))}
	}
	g.mu.Lock()
	err = g.replay.add(&a, now, time.UnixMilli(a.TimeMs).Add(g.cfg.Window+time.Millisecond))
	g.mu.Unlock()
	switch {
	case errors.Is(err, ErrReplayFull):
		return nil, a.Account, &httpErr{status: http.StatusServiceUnavailable, typ: "api_error", code: "overloaded", msg: "too many requests in the last window; retry shortly", retryAfterS: 1}
	case err != nil:
		return nil, a.Account, unauth("replayed_nonce", err)
	}
	g.mu.Lock()
	ok, wait := g.lim.take(a.Account, st, now)
	g.mu.Unlock()
	if !ok {
		rate, burst := g.cfg.Limits.Rate(st)
		secs := max(1, int((wait+time.Second-1)/time.Second))
		return nil, a.Account, &httpErr{status: http.StatusTooManyRequests, typ: "rate_limit_error", code: "rate_limit_exceeded", retryAfterS: secs,
			msg: fmt.Sprintf("rate limit of %s: %.3g requests/s with bursts of %.0f for %s of stake; retry in %d s or stake more", types.SS58Encode(a.Account), rate, burst, fmtTAO(st), secs)}
	}
	return body, a.Account, nil
}

func fmtTAO(rao uint64) string {
	return strconv.FormatFloat(float64(rao)/float64(types.RaoPerTAO), 'f', -1, 64) + " TAO"
}

func (g *Gateway) fail(w http.ResponseWriter, r *http.Request, status int, typ, code, param, msg string) {
	g.failErr(w, r, &httpErr{status: status, typ: typ, code: code, param: param, msg: msg})
}

func (g *Gateway) failErr(w http.ResponseWriter, r *http.Request, e *httpErr) {
	if e.retryAfterS > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(e.retryAfterS))
	}
	var param *string
	if e.param != "" {
		param = &e.param
	}
	g.m.refuse(e.code)
	level := slog.LevelInfo
	if e.status == http.StatusUnauthorized || e.status == http.StatusNotFound || e.status == http.StatusRequestEntityTooLarge {
		level = slog.LevelDebug // unauthenticated noise
	}
	g.cfg.Logger.Log(r.Context(), level, "gateway: refused", "method", r.Method, "path", r.URL.Path, "status", e.status, "code", e.code, "msg", e.msg)
	writeJSON(w, e.status, ErrorBody{Error: APIError{Message: e.msg, Type: e.typ, Param: param, Code: e.code}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}

// generateHandler serves completions (chat false) or chat completions.
func (g *Gateway) generateHandler(chat bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		select {
		case g.sem <- struct{}{}:
			defer func() { <-g.sem }()
		default:
			g.failErr(w, r, &httpErr{status: http.StatusServiceUnavailable, typ: "api_error", code: "overloaded", msg: fmt.Sprintf("%d requests in flight; retry shortly", g.cfg.MaxInFlight), retryAfterS: 1})
			return
		}
		body, caller, herr := g.authenticate(w, r)
		if herr != nil {
			g.failErr(w, r, herr)
			return
		}
		req, p, err := parseRequest(body, chat, g.tmpl)
		if err != nil {
			var ie *errInvalid
			errors.As(err, &ie)
			g.fail(w, r, http.StatusBadRequest, "invalid_request_error", "invalid_value", ie.param, err.Error())
			return
		}
		if !g.modelOK(req.Model) {
			g.fail(w, r, http.StatusNotFound, "invalid_request_error", "model_not_found", "model", fmt.Sprintf("model %q is not served here; use %q (GET /v1/models)", req.Model, g.cfg.ModelName))
			return
		}
		tb, herr := g.taskBody(p)
		if herr != nil {
			g.failErr(w, r, herr)
			return
		}
		cands, err := g.Candidates()
		if err != nil {
			g.failErr(w, r, &httpErr{status: http.StatusServiceUnavailable, typ: "api_error", code: "chain_unavailable", msg: err.Error(), retryAfterS: 5})
			return
		}
		if len(cands) == 0 {
			g.failErr(w, r, &httpErr{status: http.StatusServiceUnavailable, typ: "api_error", code: "no_miners",
				msg: fmt.Sprintf("no miner of subnet %d has passed this validator's checks yet (none serving, or the first scoring round has not finished); retry later", g.cfg.Netuid), retryAfterS: 30})
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), g.cfg.Timeout)
		defer cancel()
		g.answer(ctx, w, r, caller, p, tb, cands)
	}
}

// taskBody tokenizes the prompt and fills a task body.
func (g *Gateway) taskBody(p *params) (task.Body, *httpErr) {
	ids := g.cfg.Tokenizer.Encode(p.prompt, true)
	limit := min(g.cfg.ContextLen, task.MaxPromptTokens)
	if len(ids) == 0 || len(ids) > limit {
		return task.Body{}, &httpErr{status: http.StatusBadRequest, typ: "invalid_request_error", code: "context_length_exceeded", param: "prompt",
			msg: fmt.Sprintf("the prompt is %d tokens; this model takes at most %d", len(ids), limit)}
	}
	// the miner generates at most ContextLen - prompt + 1 tokens
	left := int64(min(g.cfg.ContextLen-len(ids)+1, task.MaxGenTokens))
	n := p.maxTokens
	switch {
	case n == 0 && p.chat:
		n = min(left, defaultChatTokens)
	case n == 0:
		n = min(left, defaultCompletionTokens)
	case n > left:
		n = left // as llama.cpp and vLLM do: stop at the end of the context ("length")
	}
	b := task.Body{MaxTokens: uint32(n), Temperature: p.temperature, TopP: p.topP, TopK: p.topK, TopAlts: p.topAlts, ModelHash: g.cfg.ModelHash}
	if p.topP >= 1 {
		b.TopP = 1
	}
	b.PromptIDs = make([]uint32, len(ids))
	for i, id := range ids {
		b.PromptIDs[i] = uint32(id)
	}
	if p.seed != nil {
		b.Seed = *p.seed
	} else {
		var s [8]byte
		io.ReadFull(g.cfg.Rand, s[:])
		b.Seed = binary.LittleEndian.Uint64(s[:])
	}
	return b, nil
}

// sse writes server-sent events.
type sse struct {
	w  http.ResponseWriter
	rc *http.ResponseController
}

func (s *sse) event(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintf(s.w, "data: %s\n\n", b); err != nil {
		return err
	}
	return s.rc.Flush()
}

func (s *sse) done() error {
	if _, err := io.WriteString(s.w, "data: [DONE]\n\n"); err != nil {
		return err
	}
	return s.rc.Flush()
}

// attempt is the state of one miner's answer.
type attempt struct {
	dt      detok
	st      stopper
	text    strings.Builder
	stopped bool
	offset  int // bytes of text before the current token (completions logprobs)
	clp     *CompletionLogprobs
	chlp    *ChatLogprobs
}

// answer sends the task to the candidates in turn and writes the first
// answer that arrives whole and verified.
func (g *Gateway) answer(ctx context.Context, w http.ResponseWriter, r *http.Request, caller types.AccountID, p *params, body task.Body, cands []Candidate) {
	var idb [12]byte
	io.ReadFull(g.cfg.Rand, idb[:])
	id, object := "cmpl-"+hex.EncodeToString(idb[:]), "text_completion"
	if p.chat {
		id, object = "chatcmpl-"+hex.EncodeToString(idb[:]), "chat.completion"
	}
	created := g.cfg.Now().Unix()
	chunk := func(choice any) Response {
		o := object
		if p.chat {
			o = "chat.completion.chunk"
		}
		return Response{ID: id, Object: o, Created: created, Model: g.cfg.ModelName, Choices: []any{choice}}
	}
	var stream *sse // set once the first chunk is written
	var lastErr error
	tried := 0
	for _, c := range cands[:min(len(cands), g.cfg.MaxAttempts)] {
		tried++
		at := &attempt{dt: detok{tok: g.cfg.Tokenizer, trimLead: p.chat}, st: stopper{stops: p.stops}}
		if p.logprobs {
			if p.chat {
				at.chlp = &ChatLogprobs{Content: []ChatLogprob{}}
			} else {
				at.clp = &CompletionLogprobs{}
			}
		}
		onToken := func(t task.Token) error {
			if at.stopped {
				return nil // drained for the signed final frame, not shown
			}
			out, stop := at.st.push(at.dt.push(int(t.ID)))
			at.stopped = stop
			clp, chlp := g.logprobs(at, t)
			at.text.WriteString(out)
			at.offset += len(out)
			if !p.stream || out == "" && clp == nil && chlp == nil {
				return nil
			}
			if stream == nil {
				stream = g.startStream(w, c)
				if p.chat {
					if err := stream.event(chunk(ChatChoice{Delta: &ChatDelta{Role: "assistant"}})); err != nil {
						return err
					}
				}
			}
			if p.chat {
				return stream.event(chunk(ChatChoice{Delta: &ChatDelta{Content: out}, Logprobs: chlp}))
			}
			return stream.event(chunk(CompletionChoice{Text: out, Logprobs: clp}))
		}
		res, err := g.mc.QueryWith(ctx, c.Addr, c.Hotkey, body, task.QueryOptions{FirstFrame: g.cfg.FirstToken, OnToken: onToken, TLSKey: c.TLSKey})
		if err == nil {
			err = res.Verified(c.Hotkey, res.Request)
		}
		if err != nil {
			lastErr = fmt.Errorf("miner uid %d (%s): %w", c.UID, c.Addr, err)
			g.m.minerFails.Add(1)
			g.cfg.Logger.Warn("gateway: miner failed", "uid", c.UID, "hotkey", c.Hotkey, "addr", c.Addr, "err", err)
			if stream != nil {
				// the caller has part of this answer: end the stream with the error
				g.m.brokenStream.Add(1)
				stream.event(ErrorBody{Error: APIError{Message: lastErr.Error() + "; the answer above is incomplete", Type: "api_error", Code: "miner_failed"}})
				stream.done()
				return
			}
			if ctx.Err() != nil {
				break
			}
			continue
		}
		// the whole answer is in and its final frame verified
		var tail string
		if !at.stopped {
			var stop bool
			tail, stop = at.st.push(at.dt.flush())
			if !stop {
				tail += at.st.flush()
			}
			at.stopped = stop
		}
		at.text.WriteString(tail)
		// MaxTokens is within the context, so a miner that sent fewer
		// stopped at one of its stop ids
		finish := "length"
		if n := len(res.Tokens); at.stopped || uint32(n) < body.MaxTokens || n > 0 && g.cfg.Tokenizer.IsEOG(int(res.Tokens[n-1].ID)) {
			finish = "stop"
		}
		prov := &Provenance{
			MinerUID: c.UID, MinerHotkey: c.Hotkey, Validator: g.self, RequestHash: hex.EncodeToString(res.Request[:]),
			ResultHash: hex.EncodeToString(res.Final.ResultHash[:]), FinalSignature: hex.EncodeToString(res.Final.Sig[:]),
			BatchProof: hex.EncodeToString(res.Final.Proof.Bytes()),
			Tokens:     res.Final.Count, Attempts: tried,
		}
		usage := &Usage{PromptTokens: len(body.PromptIDs), CompletionTokens: len(res.Tokens), TotalTokens: len(body.PromptIDs) + len(res.Tokens)}
		g.m.answered.Add(1)
		g.m.tokens.Add(int64(len(res.Tokens)))
		if p.stream {
			g.m.streamed.Add(1)
		}
		g.cfg.Logger.Info("gateway: answered", "caller", caller, "uid", c.UID, "tokens", len(res.Tokens), "attempts", tried, "stream", p.stream, "chat", p.chat)
		if !p.stream {
			w.Header().Set("X-Taobox-Miner-Uid", strconv.Itoa(int(c.UID)))
			w.Header().Set("X-Taobox-Miner-Hotkey", types.SS58Encode(c.Hotkey))
			var choice any
			if p.chat {
				choice = ChatChoice{Message: &ChatMessage{Role: "assistant", Content: at.text.String()}, Logprobs: at.chlp, FinishReason: &finish}
			} else {
				choice = CompletionChoice{Text: at.text.String(), Logprobs: at.clp, FinishReason: &finish}
			}
			writeJSON(w, http.StatusOK, Response{ID: id, Object: object, Created: created, Model: g.cfg.ModelName, Choices: []any{choice}, Usage: usage, Taobox: prov})
			return
		}
		if stream == nil {
			stream = g.startStream(w, c)
			if p.chat {
				stream.event(chunk(ChatChoice{Delta: &ChatDelta{Role: "assistant"}}))
			}
		}
		var last Response
		if p.chat {
			last = chunk(ChatChoice{Delta: &ChatDelta{Content: tail}, FinishReason: &finish})
		} else {
			last = chunk(CompletionChoice{Text: tail, FinishReason: &finish})
		}
		last.Taobox = prov
		stream.event(last)
		if p.usageChunk {
			u := chunk(nil)
			u.Choices, u.Usage = []any{}, usage
			stream.event(u)
		}
		stream.done()
		return
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		g.failErr(w, r, &httpErr{status: http.StatusGatewayTimeout, typ: "api_error", code: "timeout",
			msg: fmt.Sprintf("no answer within %v (%d miner(s) tried; last: %v); ask for fewer tokens or retry", g.cfg.Timeout, tried, lastErr)})
		return
	}
	g.failErr(w, r, &httpErr{status: http.StatusBadGateway, typ: "api_error", code: "miners_failed", retryAfterS: 5,
		msg: fmt.Sprintf("%d miner(s) tried, none answered: %v", tried, lastErr)})
}

// startStream writes the headers of an event stream answered by c.
func (g *Gateway) startStream(w http.ResponseWriter, c Candidate) *sse {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	h.Set("X-Taobox-Miner-Uid", strconv.Itoa(int(c.UID)))
	h.Set("X-Taobox-Miner-Hotkey", types.SS58Encode(c.Hotkey))
	w.WriteHeader(http.StatusOK)
	return &sse{w: w, rc: http.NewResponseController(w)}
}

// logprobs records token t in the attempt's logprobs and returns the entry
// for a streamed chunk (nil when logprobs were not asked for).
func (g *Gateway) logprobs(at *attempt, t task.Token) (*CompletionLogprobs, *ChatLogprobs) {
	tok := g.cfg.Tokenizer
	text := tok.TokenText(int(t.ID))
	switch {
	case at.clp != nil:
		top := make(map[string]float64, len(t.Top))
		for _, a := range t.Top {
			top[tok.TokenText(int(a.ID))] = float64(a.LogProb)
		}
		one := CompletionLogprobs{Tokens: []string{text}, TokenLogprobs: []float64{float64(t.LogProb)}, TopLogprobs: []map[string]float64{top}, TextOffset: []int{at.offset}}
		at.clp.Tokens = append(at.clp.Tokens, one.Tokens...)
		at.clp.TokenLogprobs = append(at.clp.TokenLogprobs, one.TokenLogprobs...)
		at.clp.TopLogprobs = append(at.clp.TopLogprobs, one.TopLogprobs...)
		at.clp.TextOffset = append(at.clp.TextOffset, one.TextOffset...)
		return &one, nil
	case at.chlp != nil:
		e := ChatLogprob{Token: text, Logprob: float64(t.LogProb), Bytes: byteInts(text), TopLogprobs: []ChatTopProb{}}
		for _, a := range t.Top {
			s := tok.TokenText(int(a.ID))
			e.TopLogprobs = append(e.TopLogprobs, ChatTopProb{Token: s, Logprob: float64(a.LogProb), Bytes: byteInts(s)})
		}
		at.chlp.Content = append(at.chlp.Content, e)
		return nil, &ChatLogprobs{Content: []ChatLogprob{e}}
	}
	return nil, nil
}

func byteInts(s string) []int {
	out := make([]int, len(s))
	for i := range len(s) {
		out[i] = int(s[i])
	}
	return out
}
