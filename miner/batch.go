package miner

// Continuous batching: the scheduler that serves Config.Model's answers
// when Limits.Slots > 1.
//
// One goroutine (batchWorker, in place of the one-at-a-time worker) owns up
// to Slots answers at once, each with its own KV cache (model.Seq) and its
// own sampler (the request's settings and seed). It loops:
//
//  1. admit: while a slot is free, take the next request from the stake-
//     ordered queue (blocking only when no answer is running); a request
//     whose client already left is dropped as abandoned, as before; while
//     Config.Accel serves and no answer is running here, the request is
//     answered on it instead (accel.go), one at a time, and while it
//     serves and answers are running here, none is admitted (the batch
//     drains, then the accelerator takes the queue);
//  2. retire every answer whose context ended (client gone, answer
//     timeout, miner stopping) with a reject frame, freeing its slot;
//  3. step: one model.ForwardBatch over the next token of every answer
//     that is generating, then as many prompt tokens of answers still
//     reading their prompt as fit in model.MaxBatch (a prompt enters in
//     chunks, between decode steps, so a long prompt never stalls the
//     answers already streaming);
//  4. for every answer whose logits came out, draw its token with its
//     sampler (the answers' draws spread over the cores), stream it through its own emit (token checks, result chain,
//     frame), and retire the answer after MaxTokens, after a stop token,
//     at the end of the context, or if emitting fails, signing its final
//     frame as the one-at-a-time path does.
//
// Bit-identity: model.ForwardBatch gives each token the logits Forward
// gives it alone, so every answer carries exactly the tokens and log-probs
// ModelAnswer (and model.GenerateSampled) produce for the same request,
// whatever else is in the batch; validators re-score it unchanged.
//
// The model is locked (lockModel) for each step only, so miners that share
// one *model.Model in a process (the devnet) interleave their steps; each
// miner keeps its own KV caches.

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"

	"taobox/model"
	"taobox/task"
)

// defaultSlots is Limits.Slots when zero.
const defaultSlots = 8

// defaultSlotMemory is Limits.SlotMemory when zero.
const defaultSlotMemory = 4 << 30

// slots is the number of answers generated together: Limits.Slots,
// defaulted, capped at model.MaxBatch and cut so that the slots' KV
// caches fit Limits.SlotMemory.
func (m *Miner) slots() int {
	n := m.cfg.Limits.Slots
	if n <= 0 {
		n = defaultSlots
	}
	n = min(n, model.MaxBatch)
	if mdl := m.cfg.Model; mdl != nil {
		budget := m.cfg.Limits.SlotMemory
		if budget <= 0 {
			budget = defaultSlotMemory
		}
		if per := mdl.KVCacheBytes(); per > 0 {
			n = int(min(int64(n), max(1, budget/per)))
		}
	}
	return n
}

// parallel is the number of answers the miner generates at once: slots()
// when the model itself answers (the batch scheduler), else 1.
func (m *Miner) parallel() int {
	if m.cfg.Answer == nil && m.cfg.Model != nil {
		return m.slots()
	}
	return 1
}

// batchStepHook, when set (tests only), is called by every batch scheduler
// before each step with its miner and the number of answers running.
var batchStepHook func(m *Miner, active int)

// doneCtx is an ended context: popping the queue with it takes only what
// is already waiting.
var doneCtx = func() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}()

// seqSlot is one answer in the batch scheduler.
type seqSlot struct {
	a      *answerRun
	seq    *model.Seq
	s      model.Sampler
	prompt []int
	fed    int // positions of seq written (or in the step being built)
	next   int // with fed ≥ len(prompt): the token to feed at position fed
	n, k   int // tokens to generate, generated
	alts   []model.Alt
	done   bool
}

// batcher is the scheduler's state; only batchWorker's goroutine uses it.
type batcher struct {
	m      *Miner
	mdl    *model.Model
	max    int
	active []*seqSlot
	free   []*model.Seq
	batch  []model.BatchToken
	owner  []*seqSlot // batch index → answer
	draws  []draw
	rot    int // where compose starts among the generating answers (see compose)

	finished []*answerRun // completed in this step, their final frames not yet sent (finish)
}

// minPrefill is the least room a step keeps for prompt tokens while an
// answer is still reading its prompt: with 15 answers generating, a new
// prompt would otherwise enter one token per step and wait thousands of
// steps for its first token.
const minPrefill = 4

// batchWorker serves queued requests with continuous batching until ctx
// ends (see the file comment). Answers running when ctx ends finish with
// CodeShuttingDown.
func (m *Miner) batchWorker(ctx context.Context) {
	b := &batcher{m: m, mdl: m.cfg.Model, max: m.slots()}
	for {
		for len(b.active) < b.max {
			if len(b.active) > 0 && m.accelReady() {
				// The accelerator is back: let the CPU batch drain, then
				// it takes the queue.
				break
			}
			pctx := ctx
			if len(b.active) > 0 {
				pctx = doneCtx // answers are running: do not wait
			}
			r := m.q.pop(pctx)
			if r == nil {
				break
			}
			if len(b.active) == 0 {
				// The accelerator, when it serves, takes the answers
				// one at a time; the CPU batch resumes when it stops.
				if seq := m.beginAccel(ctx); seq != nil {
					m.serveAccel(ctx, r, seq)
					m.release(r)
					continue
				}
			}
			b.admit(ctx, r)
		}
		if len(b.active) == 0 {
			if ctx.Err() != nil {
				return
			}
			continue
		}
		if h := batchStepHook; h != nil {
			h(m, len(b.active))
		}
		b.step()
	}
}

// admit starts r's answer in a free slot, or ends it at once if it cannot
// run (client gone, a prompt or sampler the model cannot take).
func (b *batcher) admit(ctx context.Context, r *request) {
	a := b.m.startAnswer(ctx, r)
	if a == nil {
		b.m.release(r)
		return
	}
	c := b.mdl.Config
	body := &r.body
	sl := &seqSlot{a: a, s: model.Sampler{Temperature: float64(body.Temperature), TopK: int(body.TopK), TopP: float64(body.TopP), Seed: body.Seed}}
	err := checkBody(c, &sl.s, body.PromptIDs)
	if err != nil {
		a.end(err)
		b.m.release(r)
		return
	}
	sl.s.Reset()
	sl.prompt = make([]int, len(body.PromptIDs))
	for i, id := range body.PromptIDs {
		sl.prompt[i] = int(id)
	}
	sl.n = min(int(body.MaxTokens), c.SeqLen-len(sl.prompt)+1)
	if n := len(b.free); n > 0 {
		sl.seq, b.free = b.free[n-1], b.free[:n-1]
	} else {
		sl.seq = b.mdl.NewSeq()
	}
	b.active = append(b.active, sl)
}

// retire ends sl's answer (err nil: the final frame) and frees its slot.
// Answers completed in a step that may share a batch signature wait for
// the step's end (finish).
func (b *batcher) retire(sl *seqSlot, err error) {
	if err == nil && sl.a.count > 0 && sl.a.r.batch {
		b.finished = append(b.finished, sl.a)
	} else {
		sl.a.end(err)
	}
	b.m.release(sl.a.r)
	b.free = append(b.free, sl.seq)
	sl.seq, sl.done = nil, true
}

// finish sends the final frames of the answers a step completed: one
// alone is signed on its stream's goroutine, as any answer's; several are
// signed here in one batch signature (task.SignBatch: the tokens are all
// out, so nothing waits for the signature but these frames), which costs
// the worker one signature for the lot instead of one per answer on other
// cores.
func (b *batcher) finish() {
	switch len(b.finished) {
	case 0:
		return
	case 1:
		b.finished[0].end(nil)
	default:
		var msgs [][]byte
		var ans []*answerRun
		for _, a := range b.finished {
			if a.r.ctx.Err() != nil {
				a.end(nil) // its client left: no signature for nobody
				continue
			}
			msgs, ans = append(msgs, a.finalBytes()), append(ans, a)
		}
		if len(msgs) > 0 {
			sigs, proofs := b.m.signer.SignAll(msgs)
			for i, a := range ans {
				a.endSigned(sigs[i], proofs[i])
			}
		}
	}
	clear(b.finished)
	b.finished = b.finished[:0]
}

// step retires the answers whose context ended, then runs one batched
// forward step and streams the tokens it yields.
func (b *batcher) step() {
	defer b.finish()
	for _, sl := range b.active {
		if err := sl.a.ctx.Err(); err != nil {
			b.retire(sl, err)
		}
	}
	b.compact()
	b.compose()
	if len(b.batch) == 0 {
		return
	}
	unlock := lockModel(b.mdl)
	defer unlock() // the logits belong to the model until it is unlocked
	logits, err := b.mdl.ForwardBatch(b.batch)
	if err != nil {
		for _, sl := range b.owner {
			if !sl.done {
				b.retire(sl, fmt.Errorf("miner: generate: %w", err))
			}
		}
		b.compact()
		return
	}
	vocab := b.mdl.Config.VocabSize
	b.draws = b.draws[:0]
	j := 0
	for i, bt := range b.batch {
		if bt.NoLogits {
			continue
		}
		b.draws = append(b.draws, draw{sl: b.owner[i], logits: logits[j*vocab : (j+1)*vocab]})
		j++
	}
	drawAll(b.draws)
	for i := range b.draws {
		b.emit(&b.draws[i])
	}
	b.compact()
}

// compose fills b.batch (and b.owner) with the step's tokens: the next
// token of each generating answer, then prompt chunks in the room left.
// While a prompt waits, the generating answers leave minPrefill places to
// it; which of them sit the step out rotates from step to step, so each
// is delayed by the same share. The order of tokens in a step does not
// change their logits (model.ForwardBatch).
func (b *batcher) compose() {
	b.batch, b.owner = b.batch[:0], b.owner[:0]
	room := model.MaxBatch
	for _, sl := range b.active {
		if sl.fed < len(sl.prompt) {
			room -= minPrefill
			break
		}
	}
	n := len(b.active)
	for k := range n { // generating answers: one token each
		sl := b.active[(b.rot+k)%n]
		if sl.fed >= len(sl.prompt) && len(b.batch) < room {
			b.batch = append(b.batch, model.BatchToken{Seq: sl.seq, Token: sl.next, Pos: sl.fed})
			b.owner = append(b.owner, sl)
			sl.fed++
		}
	}
	b.rot++
	for _, sl := range b.active { // prompts: chunks in the room left
		for sl.fed < len(sl.prompt) && len(b.batch) < model.MaxBatch {
			last := sl.fed == len(sl.prompt)-1
			b.batch = append(b.batch, model.BatchToken{Seq: sl.seq, Token: sl.prompt[sl.fed], Pos: sl.fed, NoLogits: !last})
			b.owner = append(b.owner, sl)
			sl.fed++
		}
	}
}

// draw is one answer's token of a step: its logits, then what its sampler
// drew from them.
type draw struct {
	sl     *seqSlot
	logits []float32
	next   int
	tok    task.Token
}

// run draws the token and its alternatives (the per-vocabulary work: the
// log-softmax costs about a small model's forward pass per token).
func (d *draw) run() {
	sl := d.sl
	body := &sl.a.r.body
	next, lp := sl.s.Step(d.logits)
	d.next, d.tok = next, task.Token{ID: uint32(next), LogProb: logProb32(lp)}
	if body.TopAlts > 0 {
		sl.alts = model.AppendTopAlternatives(sl.alts[:0], d.logits, int(body.TopAlts))
		d.tok.Top = make([]task.Alt, len(sl.alts))
		for i, a := range sl.alts {
			d.tok.Top[i] = task.Alt{ID: uint32(a.ID), LogProb: logProb32(a.LogProb)}
		}
	}
}

// drawAll runs every draw, spread over the available cores: each answer
// has its own sampler, so the order does not change what is drawn.
func drawAll(ds []draw) {
	workers := min(len(ds), runtime.GOMAXPROCS(0))
	if workers <= 1 {
		for i := range ds {
			ds[i].run()
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < len(ds); i = int(next.Add(1)) - 1 {
				ds[i].run()
			}
		})
	}
	wg.Wait()
}

// emit streams d's token, retiring its answer when complete or when the
// stream fails.
func (b *batcher) emit(d *draw) {
	sl := d.sl
	if err := sl.a.emit(d.tok); err != nil {
		b.retire(sl, err)
		return
	}
	sl.k++
	if sl.k == sl.n || slices.Contains(b.m.cfg.StopIDs, d.next) {
		b.retire(sl, nil)
		return
	}
	sl.next = d.next
}

// compact drops retired answers from active, keeping admission order.
func (b *batcher) compact() {
	b.active = slices.DeleteFunc(b.active, func(sl *seqSlot) bool { return sl.done })
}
