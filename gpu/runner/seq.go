package runner

// Inference through the Engine: the runner holds one model (LoadModel) and
// one KV cache, so one answer at a time uses it (Seq). Every runner the
// engine starts after a failure loads the model again before it serves; an
// answer whose runner failed under it gets an error from Forward and goes
// on elsewhere (the miner replays it on its CPU model).

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"taobox/model"
	"time"
)

// checkModelFile checks that the file at path still has the SHA-256 sum
// (hex; "" checks nothing): the runner reads the file itself, at every
// load, and must not serve another model than the one advertised.
func checkModelFile(path, sum string) error {
	if sum == "" {
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("runner: the model file: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return fmt.Errorf("runner: reading the model file: %w", err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != sum {
		return fmt.Errorf("runner: %s changed on disk (sha256 %.16s…, the model served is %.16s…); restart to serve the new file", path, got, sum)
	}
	return nil
}

// ErrNoRunner: no runner is up (the CPU backend, no GPU, or a runner that
// failed and is restarting).
var ErrNoRunner = errors.New("runner: no GPU runner is up")

// errSeqEnded: Forward after End, or after the runner failed under the Seq.
var errSeqEnded = errors.New("runner: the sequence ended (its runner failed or End was called)")

// LoadModel has the runner load the GGUF file at path for the llama ops,
// now and in every runner started after a failure, and returns the
// runner's description of it. sum (hex SHA-256; "" checks nothing) is the
// file's: the file is checked against it before each load, so a file
// replaced on disk is never served. With no runner up it returns ErrNoRunner
// (a later restart still loads path, unless the backend is cpu); when the
// runner cannot load it (too big for the GPU's memory, a type its kernels
// lack) it returns the runner's error and BeginSeq returns nil until a
// load succeeds. It waits for the Seq in use, if any, to end. When ctx
// ends during the load, LoadModel returns at once, without retiring the
// runner, which finishes the load in the background (BeginSeq returns nil
// until it is done).
func (e *Engine) LoadModel(ctx context.Context, path, sum string) (string, error) {
	if path == "" {
		return "", errors.New("runner: LoadModel: empty path")
	}
	if err := checkModelFile(path, sum); err != nil {
		return "", err
	}
	select {
	case e.seqSem <- struct{}{}:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	e.mu.Lock()
	if e.opts.Backend != BackendCPU {
		e.model, e.modelSum = path, sum
	}
	p := e.upLocked()
	if p != nil {
		p.model = ""
	}
	e.mu.Unlock()
	if p == nil {
		<-e.seqSem
		return "", ErrNoRunner
	}
	// The load goes on without the caller's cancellation, so that a
	// caller who leaves neither breaks the connection nor loses the load:
	// it finishes in the background (holding the model's Seq slot) within
	// LoadTimeout.
	type result struct {
		desc string
		err  error
	}
	res := make(chan result, 1)
	go func() {
		defer func() { <-e.seqSem }()
		desc, err := e.load(p, path)
		res <- result{desc, err}
	}()
	select {
	case r := <-res:
		return r.desc, r.err
	case <-ctx.Done():
		e.log.Info("model load cancelled by the caller; the GPU runner finishes it in the background", "model", path)
		return "", ctx.Err()
	}
}

// load has p load path for LoadModel, with LoadTimeout, and books the
// outcome.
func (e *Engine) load(p *process, path string) (string, error) {
	desc, err := p.client.LlamaLoad(withCallTimeout(context.Background(), e.opts.LoadTimeout), path)
	var re *RemoteError
	switch {
	case err == nil:
		e.mu.Lock()
		if e.proc == p {
			p.model = path
		}
		e.stats.ModelLoads++
		e.mu.Unlock()
		e.log.Info("model loaded on the GPU runner", "model", desc)
		return desc, nil
	case errors.As(err, &re):
		// Not retried by restarts: the runner cannot take this model.
		e.mu.Lock()
		if e.model == path {
			e.model = ""
		}
		e.mu.Unlock()
		return "", fmt.Errorf("the GPU runner could not load %s: %w", path, err)
	case errors.Is(err, ErrNotSent):
		// Nothing was sent: the runner is not at fault.
		return "", fmt.Errorf("the GPU runner did not get %s: %w", path, err)
	}
	e.callFailed(p, fmt.Errorf("loading %s: %w", path, err))
	return "", fmt.Errorf("the GPU runner failed loading %s: %w", path, err)
}

// reloadModel loads the engine's model, if any, into p, a runner that is
// starting (not yet in service), until p holds the model LoadModel last
// asked for (one may come in meanwhile). When the runner refuses the model
// (an error response) p serves Yuma without it and later restarts do not
// try it again (as LoadModel); any other failure broke
// p's connection and is returned: p must not be put into service.
func (e *Engine) reloadModel(ctx context.Context, p *process) error {
	for {
		e.mu.Lock()
		path, sum := e.model, e.modelSum
		done := path == "" || p.model == path
		e.mu.Unlock()
		if done {
			return nil
		}
		if err := checkModelFile(path, sum); err != nil {
			e.log.Warn("the restarted GPU runner gets no model; inference stays on the CPU", "err", err)
			return nil
		}
		desc, err := p.client.LlamaLoad(withCallTimeout(ctx, e.opts.LoadTimeout), path)
		var re *RemoteError
		switch {
		case errors.As(err, &re):
			// Not retried by later restarts, as in LoadModel.
			e.mu.Lock()
			if e.model == path {
				e.model = ""
			}
			e.mu.Unlock()
			e.log.Warn("the restarted GPU runner could not load the model; inference stays on the CPU until a model is loaded again", "model", path, "err", err)
			return nil
		case err != nil:
			return fmt.Errorf("reloading the model %s: %w", path, err)
		}
		e.mu.Lock()
		p.model = path
		e.stats.ModelLoads++
		e.mu.Unlock()
		e.log.Debug("model reloaded on the restarted GPU runner", "model", desc)
	}
}

// Seq is one answer's exclusive use of the runner's model and KV cache,
// from BeginSeq to End. Its methods are not safe for concurrent use.
type Seq struct {
	e        *Engine
	p        *process // nil after End or a failure
	logits   []float32
	forwards int // good forwards
}

// maxSeqFaults is how many sequences in a row may end in a fault the
// runner reported (an error response, or logits the caller refused: Fail)
// before the runner is retired as a sick device.
const maxSeqFaults = 3

// BeginSeq waits until no other Seq holds the runner's model and returns
// one, or nil at once when no runner with the loaded model is up (the
// caller then answers on the CPU), or when ctx ends while it waits. Call
// End when the answer is done.
func (e *Engine) BeginSeq(ctx context.Context) *Seq {
	if !e.modelUp() {
		return nil
	}
	select {
	case e.seqSem <- struct{}{}:
	case <-ctx.Done():
		return nil
	}
	e.mu.Lock()
	p := e.upLocked()
	ok := p != nil && e.model != "" && p.model == e.model
	e.mu.Unlock()
	if !ok {
		<-e.seqSem
		return nil
	}
	return &Seq{e: e, p: p}
}

// GPUDetected reports whether the engine found a GPU and a runner binary
// (the runner may be down now, restarting).
func (e *Engine) GPUDetected() bool { return e.gpu.Binary != "" }

// ModelOnGPU reports whether a runner is up with the model loaded.
func (e *Engine) ModelOnGPU() bool { return e.modelUp() }

func (e *Engine) modelUp() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	p := e.upLocked()
	return p != nil && e.model != "" && p.model == e.model
}

// Forward runs token at position pos on the runner's model (positions
// below pos are this Seq's earlier calls: start at 0) and returns the
// logits, valid until the next call. The call has the engine's
// ForwardTimeout and does not take the caller's context, so that a client
// leaving mid-answer never breaks the runner's connection: check it
// between calls. A transport failure or
// timeout retires the runner (restarted with backoff, Yuma on the CPU
// meanwhile) and ends the Seq; every later call returns an error. A call
// that did not get the connection within ForwardTimeout (a Yuma batch held
// it; ErrNotSent) ends the Seq without retiring the runner.
func (s *Seq) Forward(token, pos int) ([]float32, error) {
	if s.p == nil {
		return nil, errSeqEnded
	}
	e, p := s.e, s.p
	logits, err := p.client.LlamaForwardInto(withCallTimeout(context.Background(), e.opts.ForwardTimeout), s.logits, token, pos)
	if err != nil {
		return nil, s.callFailed("llama.forward", err)
	}
	s.logits = logits
	s.ran(1)
	return logits, nil
}

// ran counts n good forwards of the Seq.
func (s *Seq) ran(n int) {
	s.forwards += n
	s.e.mu.Lock()
	s.e.stats.RunnerForwards += n
	s.e.mu.Unlock()
}

// callFailed ends the Seq after op failed with err: a fault (Fail) when
// the runner answered with an error, neither a fault nor a failure when
// the request was not sent (the connection stayed busy), else the runner
// is retired. It returns err.
func (s *Seq) callFailed(op string, err error) error {
	var re *RemoteError
	switch {
	case errors.As(err, &re):
		s.Fail(err)
	case errors.Is(err, ErrNotSent):
		s.release(false)
	default:
		s.e.callFailed(s.p, fmt.Errorf("%s: %w", op, err))
		s.release(false)
	}
	return err
}

// Generate runs prompt from position 0 and n greedy tokens after it on the
// runner's model in one round trip (llama.generate: the tokens never
// leave the GPU between steps) and returns them with their log-probs. It
// replaces the Seq's KV cache from position 0. Its deadline grows with the
// work: ForwardTimeout plus 50 ms per token. Failures are Forward's.
func (s *Seq) Generate(prompt []int, n int) ([]int, []float64, error) {
	if s.p == nil {
		return nil, nil, errSeqEnded
	}
	e, p := s.e, s.p
	d := e.opts.ForwardTimeout + time.Duration(len(prompt)+n)*50*time.Millisecond
	toks, lps, err := p.client.LlamaGenerate(withCallTimeout(context.Background(), d), prompt, n)
	if err != nil {
		return nil, nil, s.callFailed("llama.generate", err)
	}
	s.ran(len(prompt) + max(len(toks)-1, 0)) // the last token is not fed
	return toks, lps, nil
}

// Score is model.AccelScorer's teacher-forced pass on the runner's model
// in one round trip (llama.score: on the GPU a batched pass whose
// reductions stay there). It replaces the Seq's KV cache from position 0.
// Its deadline grows with the work as Generate's. Failures are Forward's,
// except that a runner without llama.score (an older taobox-cuda) returns
// model.ErrScoreUnsupported, leaving the Seq usable, and is not asked
// again.
func (s *Seq) Score(ids []int, from int, qs []int, ranks bool, margin float64) ([]float64, []int, [][]float64, error) {
	if s.p == nil {
		return nil, nil, nil, errSeqEnded
	}
	e, p := s.e, s.p
	e.mu.Lock()
	no := p.noScore
	e.mu.Unlock()
	if no {
		return nil, nil, nil, model.ErrScoreUnsupported
	}
	d := e.opts.ForwardTimeout + time.Duration(len(ids))*50*time.Millisecond
	r, err := p.client.LlamaScore(withCallTimeout(context.Background(), d), ScoreRequest{IDs: ids, From: from, Spots: qs, Ranks: ranks, Margin: margin})
	if re := (*RemoteError)(nil); errors.As(err, &re) && re.NotServed() {
		e.mu.Lock()
		p.noScore = true
		e.mu.Unlock()
		return nil, nil, nil, fmt.Errorf("%w: %v", model.ErrScoreUnsupported, err)
	}
	if err != nil {
		return nil, nil, nil, s.callFailed("llama.score", err)
	}
	s.ran(max(len(ids)-1, 0))
	return r.LogProbs, r.Ahead, r.Dists, nil
}

// Sample is model.AccelSampler's step on the runner's model in one round
// trip (llama.sample): it feeds tokens at pos, pos+1, … and draws the next
// token there with s's settings and state, so that only the token, its
// log-prob and the alternatives cross the boundary instead of every
// logit. The caller checks the result against its model (model.CheckSampled,
// as it checks Forward's logits); Sample checks the sampler's count of
// draws before s advances, and a wrong one fails the Seq (Fail). Its
// deadline is ForwardTimeout plus 100 ms a token fed after the first.
// Failures are Forward's, except that a runner without llama.sample (an older
// taobox-cuda) returns model.ErrSampleUnsupported, leaving the Seq usable,
// and is not asked again.
func (s *Seq) Sample(tokens []int, pos int, smp *model.Sampler, alts int, top []model.Alt) (int, float64, []model.Alt, error) {
	if s.p == nil {
		return 0, 0, nil, errSeqEnded
	}
	e, p := s.e, s.p
	e.mu.Lock()
	no := p.noSample
	e.mu.Unlock()
	if no {
		return 0, 0, nil, model.ErrSampleUnsupported
	}
	// A prompt is fed here in one call: 100 ms a token on top (a 1B model
	// takes 1–2 ms a token on a GPU).
	d := e.opts.ForwardTimeout + time.Duration(len(tokens)-1)*100*time.Millisecond
	r, err := p.client.LlamaSample(withCallTimeout(context.Background(), d), SampleRequest{
		Tokens: tokens, Pos: pos, Temperature: smp.Temperature, TopK: smp.TopK, TopP: smp.TopP,
		Seed: smp.Seed, Draws: smp.Draws(), Alts: alts,
	}, top)
	if re := (*RemoteError)(nil); errors.As(err, &re) && re.NotServed() {
		e.mu.Lock()
		p.noSample = true
		e.mu.Unlock()
		return 0, 0, nil, fmt.Errorf("%w: %v", model.ErrSampleUnsupported, err)
	}
	if err != nil {
		return 0, 0, nil, s.callFailed("llama.sample", err)
	}
	if want := smp.Draws() + smp.StepDraws(); r.Draws != want {
		err = fmt.Errorf("llama.sample: the sampler drew %d numbers in all, want %d", r.Draws, want)
		s.Fail(err)
		return 0, 0, nil, err
	}
	smp.Skip(smp.StepDraws())
	s.ran(len(tokens))
	return r.ID, r.LogProb, r.Alts, nil
}

// Fail ends the Seq for a fault of the runner's making that left its
// process up: an error response, or logits the caller could not use (NaN,
// the wrong count). After maxSeqFaults such sequences in a row, with no
// good sequence (End after forwards) between them, the runner is retired
// and restarted.
func (s *Seq) Fail(err error) {
	if s.p == nil {
		return
	}
	e, p := s.e, s.p
	s.release(false)
	e.mu.Lock()
	if e.proc != p {
		e.mu.Unlock()
		return
	}
	p.faults++
	sick := p.faults >= maxSeqFaults
	e.mu.Unlock()
	if sick {
		e.callFailed(p, fmt.Errorf("%d answers in a row failed on the runner; last: %w", maxSeqFaults, err))
	}
}

// End releases the runner's model for the next Seq. It may be called more
// than once. A Seq that ran forwards and did not fail counts as a good one:
// the runner's fault count and the restart backoff start over.
func (s *Seq) End() { s.release(s.forwards > 0) }

func (s *Seq) release(good bool) {
	if s.p == nil {
		return
	}
	e, p := s.e, s.p
	s.p = nil
	if good {
		e.mu.Lock()
		if e.proc == p {
			p.faults = 0
			e.backoff = e.opts.MinBackoff
		}
		e.mu.Unlock()
	}
	<-e.seqSem
}
