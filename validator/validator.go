// Package validator is taobox's validator: it sends inference tasks to the
// miners of a subnet, verifies their answers with its own copy of the
// model, scores correctness and speed, and sets weights on chain.
//
// The package is a pure core with a thin driver:
//   - prompts.go: the seeded task-set generator;
//   - verify.go: Verify, one teacher-forced pass per answer (inference.md §6);
//   - scores.go: the per-uid moving average and its atomic state file;
//   - weights.go: the incumbent's weight pipeline, bit for bit in the u16
//     conversion (incumbent-protocol.md §3.1);
//   - schedule.go: when weights may be set, committed or revealed
//     (chain-rules.md §4);
//   - validator.go: Validator, which drives them: Round queries and scores,
//     MaybeSetWeights submits.
//
// The driver takes its chain view, transaction submission, clock, random
// source and task client as inputs, so the devnet, the CLI and tests run
// the same code.
package validator

import (
	"context"
	"crypto/ed25519"
	crand "crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"taobox/chain/state"
	"taobox/chain/types"
	"taobox/model"
	"taobox/task"
)

// Chain is the validator's view of the chain.
type Chain interface {
	Metagraph(netuid uint16) (*state.Metagraph, error)
	Height() uint64 // the latest block the metagraph reflects
}

// Querier sends one task to one miner; *task.Client is one. The validator
// sets o.TLSKey to the key the miner registered with serve.
type Querier interface {
	QueryWith(ctx context.Context, addr string, miner types.AccountID, body task.Body, o task.QueryOptions) (*task.Result, error)
}

// Config configures a Validator. Zero values take the documented defaults.
type Config struct {
	Key       ed25519.PrivateKey // the validator's hotkey (signs tasks; weights calls are signed by Submit)
	Netuid    uint16
	Model     *model.Model     // the validator's own copy; used only by the validator
	Tokenizer *model.Tokenizer // the model's tokenizer (prompts, end-of-sequence)
	ModelHash [32]byte         // SHA-256 of the model file miners must serve
	Chain     Chain
	// Submit sends a call signed by the validator's hotkey (SetWeights,
	// CommitWeights, RevealWeights). It returns once the call is queued.
	Submit func(types.Call) error
	// StateDir holds the state file (StateFile); "" keeps scores in memory.
	StateDir string
	// ResetCorrupt starts from empty scores when the state file is corrupt
	// (the file is kept as <name>.corrupt); otherwise New fails.
	ResetCorrupt bool
	// Client queries miners; nil: a task.Client signing with Key.
	Client Querier
	// Concurrency bounds the miners queried at once (default 8).
	Concurrency int
	// Deadline bounds one task, from sending to the final frame (default 10 s).
	Deadline time.Duration
	// Sample is the number of serving miners queried per round (0: all).
	Sample int
	// Tasks is the number of tasks each queried miner gets per round
	// (default DefaultTasks), half greedy and half sampled. Every miner of
	// a round gets tasks of the same shapes, so speeds compare.
	Tasks int
	// Alpha is the EMA weight of the newest round (default DefaultAlpha).
	Alpha float64
	// Tolerance for verification (nil: DefaultTolerance).
	Tolerance *Tolerance
	// WeightsVersion is the version key sent with weights (0:
	// WeightsVersion). A subnet whose key is higher refuses them: its
	// owner requires a newer validator.
	WeightsVersion uint64
	// Accel, when set, runs the verification pass on another device (the
	// GPU runner) while it is ready; the CPU Model otherwise.
	Accel  model.Accelerator
	Logger *slog.Logger
	Now    func() time.Time // nil: time.Now
	Rand   *rand.Rand       // task seeds, samples, salts; nil: seeded from crypto/rand
}

// WeightsVersion is the weights version key this validator sends, as the
// incumbent's validators send their own spec version rather than the
// subnet's: a subnet owner who raises the subnet's key above it (the
// weights_version hyperparameter) refuses this release's weights until
// its validators upgrade. It goes up with every release that changes what
// a validator checks or scores.
const WeightsVersion uint64 = 1

// DefaultTasks is Config.Tasks' default. A miner passes a round only if
// every answer verifies, so the number of tasks is how often a substituted
// model slips through: Q4_0 of the validator's own weights passes about
// half of single tasks (the table in verify.go), so about a quarter of
// rounds of 2 and 1 in 16 of rounds of 4, while honest engines pass them
// all.
const DefaultTasks = 4

// Validator runs rounds and sets weights for one subnet. Round and
// MaybeSetWeights may be called from different goroutines.
type Validator struct {
	cfg    Config
	hotkey types.AccountID
	gen    *Generator
	ver    *Verifier
	log    *slog.Logger
	path   string
	owned  *task.Client // the client New made, closed by Close

	mu         sync.Mutex // guards st, rng and lostWarned
	st         *State
	rng        *rand.Rand
	lostWarned uint64 // the LastSubmit whose call was logged as lost
}

// MinerReport is one miner's part of a round.
type MinerReport struct {
	UID          uint16
	Hotkey       types.AccountID
	Addr         string
	Tasks        int     // tasks sent this round
	Answered     int     // tasks that came back with at least one token
	Passed       int     // tasks whose answer verified
	Tokens       int     // tokens served over the round's tasks
	Pass         bool    // every task verified
	Reason       string  // the first failure
	TokensPerSec float64 // tokens over the sum of the tasks' response times
	MaxDiff      float64 // largest log-prob difference seen
	RoundScore   float64 // gate × speed relative to the best this round
	Score        float64 // the moving average after this round

	tlsKey types.AccountID // the key it registered with serve, pinned in TLS
}

// RoundReport is what Round did.
type RoundReport struct {
	Round    uint64
	Height   uint64
	Seed     uint64 // the round's seed: with a miner's uid it gives that miner's tasks (Generator.Tasks)
	Miners   []MinerReport
	Reset    []uint16 // uids whose score was reset (hotkey changed) or dropped
	Duration time.Duration
}

// New checks cfg, loads the state file and returns a validator.
func New(cfg Config) (*Validator, error) {
	var errs []error
	if len(cfg.Key) != ed25519.PrivateKeySize {
		errs = append(errs, errors.New("Key: an ed25519 private key is required"))
	}
	if cfg.Model == nil {
		errs = append(errs, errors.New("Model is required"))
	}
	if cfg.Chain == nil {
		errs = append(errs, errors.New("Chain is required"))
	}
	if cfg.Submit == nil {
		errs = append(errs, errors.New("Submit is required"))
	}
	if cfg.Concurrency < 0 || cfg.Sample < 0 || cfg.Tasks < 0 || cfg.Deadline < 0 {
		errs = append(errs, errors.New("Concurrency, Sample, Tasks and Deadline must not be negative"))
	}
	if cfg.Alpha < 0 || cfg.Alpha > 1 {
		errs = append(errs, fmt.Errorf("Alpha %v must be in (0, 1]", cfg.Alpha))
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("validator: %w", errors.Join(errs...))
	}
	if cfg.Concurrency == 0 {
		cfg.Concurrency = 8
	}
	if cfg.Deadline == 0 {
		cfg.Deadline = 10 * time.Second
	}
	if cfg.WeightsVersion == 0 {
		cfg.WeightsVersion = WeightsVersion
	}
	if cfg.Tasks == 0 {
		cfg.Tasks = DefaultTasks
	}
	if cfg.Alpha == 0 {
		cfg.Alpha = DefaultAlpha
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rand == nil {
		// ChaCha8, not PCG: the salts of revealed commits are public, and
		// PCG's state follows from its outputs (the next round seeds with
		// it)
		var seed [32]byte
		if _, err := crand.Read(seed[:]); err != nil {
			return nil, err
		}
		cfg.Rand = rand.New(rand.NewChaCha8(seed))
	}
	gen, err := NewGenerator(cfg.Tokenizer, cfg.Model.Config.SeqLen, cfg.ModelHash)
	if err != nil {
		return nil, err
	}
	v := &Validator{cfg: cfg, hotkey: types.AccountIDFromPrivateKey(cfg.Key), gen: gen, log: cfg.Logger, rng: cfg.Rand}
	v.ver = NewVerifier(cfg.Model, cfg.Tokenizer)
	v.ver.Accel = cfg.Accel
	if cfg.Tolerance != nil {
		v.ver.Tol = *cfg.Tolerance
	}
	if v.cfg.Client == nil {
		v.owned = task.NewClient(cfg.Key, cfg.Netuid, task.ClientOptions{Timeout: cfg.Deadline, Now: cfg.Now})
		v.cfg.Client = v.owned
	}
	if cfg.StateDir != "" {
		v.path = filepath.Join(cfg.StateDir, StateFile)
	}
	v.st = &State{Version: stateVersion, Netuid: cfg.Netuid, Hotkey: v.hotkey}
	if v.path != "" {
		st, err := LoadState(v.path, cfg.Netuid, v.hotkey)
		switch {
		case errors.Is(err, ErrCorruptState) && cfg.ResetCorrupt:
			kept, rerr := renameAside(v.path)
			if rerr != nil {
				return nil, rerr
			}
			v.log.Warn("validator: starting with empty scores", "err", err, "kept", kept)
		case err != nil:
			return nil, fmt.Errorf("%w (set ResetCorrupt, or --reset-state, to start afresh)", err)
		default:
			v.st = st
		}
	}
	return v, nil
}

// AccelStats returns how many verification passes ran on Config.Accel,
// and how many failed there and were rerun on the CPU.
func (v *Validator) AccelStats() (passes, fallbacks int64) { return v.ver.AccelStats() }

// Close releases the task client New made.
func (v *Validator) Close() error {
	if v.owned != nil {
		return v.owned.Close()
	}
	return nil
}

// Hotkey is the validator's hotkey.
func (v *Validator) Hotkey() types.AccountID { return v.hotkey }

// Scores returns a copy of the current per-uid records.
func (v *Validator) Scores() []Record {
	v.mu.Lock()
	defer v.mu.Unlock()
	return slices.Clone(v.st.Scores)
}

// save writes the state file (when there is one); v.mu held.
func (v *Validator) saveLocked() error {
	if v.path == "" {
		return nil
	}
	return SaveState(v.path, v.st)
}

func selfUID(mg *state.Metagraph, hk types.AccountID) (uint16, bool) {
	for i := range mg.Neurons {
		if mg.Neurons[i].Hotkey == hk {
			return mg.Neurons[i].UID, true
		}
	}
	return 0, false
}

func serving(n *state.NeuronInfo) bool { return n.Axon.Port != 0 && n.Axon.Host != "" }

// Round queries the serving miners (or a sample), verifies their answers,
// updates the scores and saves them.
func (v *Validator) Round(ctx context.Context) (RoundReport, error) {
	start := v.cfg.Now()
	mg, err := v.cfg.Chain.Metagraph(v.cfg.Netuid)
	if err != nil {
		return RoundReport{}, fmt.Errorf("validator: metagraph of subnet %d: %w", v.cfg.Netuid, err)
	}
	rep := RoundReport{Height: v.cfg.Chain.Height()}
	v.mu.Lock()
	rep.Reset = v.st.Sync(mg)
	var miners []*state.NeuronInfo
	for i := range mg.Neurons {
		n := &mg.Neurons[i]
		if n.Hotkey != v.hotkey && serving(n) {
			miners = append(miners, n)
		}
	}
	if v.cfg.Sample > 0 && len(miners) > v.cfg.Sample {
		v.rng.Shuffle(len(miners), func(i, j int) { miners[i], miners[j] = miners[j], miners[i] })
		miners = miners[:v.cfg.Sample]
		slices.SortFunc(miners, func(a, b *state.NeuronInfo) int { return int(a.UID) - int(b.UID) })
	}
	rep.Seed = v.rng.Uint64()
	v.mu.Unlock()
	for _, u := range rep.Reset {
		v.log.Info("validator: score reset (uid deregistered or replaced)", "uid", u)
	}
	reports := make([]MinerReport, len(miners))
	sem := make(chan struct{}, v.cfg.Concurrency)
	var wg sync.WaitGroup
	for i, n := range miners {
		reports[i] = MinerReport{UID: n.UID, Hotkey: n.Hotkey, Addr: net.JoinHostPort(n.Axon.Host, strconv.Itoa(int(n.Axon.Port))), tlsKey: n.Axon.TLSKey}
		wg.Add(1)
		go func(r *MinerReport) {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				r.Reason = "round cancelled"
				return
			}
			defer func() { <-sem }()
			v.queryMiner(ctx, r, v.gen.Tasks(rep.Seed, uint64(r.UID), v.cfg.Tasks))
		}(&reports[i])
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return RoundReport{}, err
	}

	var best float64
	for _, r := range reports {
		if r.Pass {
			best = max(best, r.TokensPerSec)
		}
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	v.st.Round++
	rep.Round = v.st.Round
	queried := map[uint16]bool{}
	for i := range reports {
		r := &reports[i]
		queried[r.UID] = true
		if r.Pass && best > 0 {
			r.RoundScore = r.TokensPerSec / best
		}
		r.Score = v.st.Update(r.UID, r.Hotkey, r.RoundScore, v.cfg.Alpha, r.Pass)
		v.log.Debug("validator: miner", "uid", r.UID, "pass", r.Pass, "reason", r.Reason, "tok/s", r.TokensPerSec, "score", r.Score)
	}
	// a miner that stopped serving earns nothing from now on
	for _, rec := range slices.Clone(v.st.Scores) {
		if n := &mg.Neurons[rec.UID]; !queried[rec.UID] && !serving(n) && rec.Score > 0 {
			v.st.Update(rec.UID, n.Hotkey, 0, v.cfg.Alpha, false)
		}
	}
	rep.Miners = reports
	rep.Duration = v.cfg.Now().Sub(start)
	if err := v.saveLocked(); err != nil {
		return rep, fmt.Errorf("validator: saving scores: %w", err)
	}
	return rep, nil
}

// queryMiner runs the round's tasks against one miner, one after the other.
func (v *Validator) queryMiner(ctx context.Context, r *MinerReport, bodies []task.Body) {
	var total time.Duration
	r.Pass = true
	for _, b := range bodies {
		r.Tasks++
		qctx, cancel := context.WithTimeout(ctx, v.cfg.Deadline)
		res, err := v.cfg.Client.QueryWith(qctx, r.Addr, r.Hotkey, b, task.QueryOptions{TLSKey: r.tlsKey})
		cancel()
		var vd Verdict
		if err != nil {
			vd = Verdict{Reason: "query: " + err.Error()}
		} else {
			vd = v.ver.VerifySigned(r.Hotkey, res.Request, b, res)
			total += res.Total
		}
		r.Tokens += vd.Tokens
		if vd.Tokens > 0 {
			r.Answered++
		}
		if vd.Pass {
			r.Passed++
		}
		r.MaxDiff = max(r.MaxDiff, vd.MaxDiff)
		if !vd.Pass && r.Pass {
			r.Pass, r.Reason = false, vd.Reason
		}
	}
	if total > 0 {
		r.TokensPerSec = float64(r.Tokens) / total.Seconds()
	}
	if r.Pass && r.TokensPerSec == 0 {
		r.Pass, r.Reason = false, "no measurable response time"
	}
}

// resubmitAfter is how many blocks the validator waits for a submitted
// weights call to show in LastUpdate (or a reveal in its weights row)
// before it submits again.
const resubmitAfter = 20

// epochMargin: no commit in the last blocks before an epoch boundary, so
// that the epoch the commit lands in is the one predicted.
const epochMargin = 2

// NextWindow returns the next weight window: the block from which the next
// set_weights, commit or reveal is legal.
func (v *Validator) NextWindow() (Window, error) {
	mg, err := v.cfg.Chain.Metagraph(v.cfg.Netuid)
	if err != nil {
		return Window{}, err
	}
	self, ok := selfUID(mg, v.hotkey)
	if !ok {
		return Window{}, fmt.Errorf("validator: hotkey %s is not registered on subnet %d", v.hotkey, v.cfg.Netuid)
	}
	height := v.cfg.Chain.Height()
	v.mu.Lock()
	defer v.mu.Unlock()
	return NextWindow(mg, self, v.st.Pending, v.st.LastSubmit, height), nil
}

// MaybeSetWeights submits weights if that is legal at the block after
// height: set_weights after the rate limit, or on commit-reveal subnets a
// salted commit and, in its reveal window, the reveal. It reports whether
// it submitted a call. Nothing is submitted before any miner has a score.
func (v *Validator) MaybeSetWeights(height uint64) (bool, error) {
	mg, err := v.cfg.Chain.Metagraph(v.cfg.Netuid)
	if err != nil {
		return false, fmt.Errorf("validator: metagraph of subnet %d: %w", v.cfg.Netuid, err)
	}
	self, ok := selfUID(mg, v.hotkey)
	if !ok {
		return false, fmt.Errorf("validator: hotkey %s is not registered on subnet %d", v.hotkey, v.cfg.Netuid)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	v.st.Sync(mg)
	s := &mg.Subnet
	h := s.Hyper
	next := height + 1
	me := &mg.Neurons[self]
	// A state file from a chain that has since been reset (a devnet wiped
	// with the state directory kept) records calls from its future: drop
	// them, or they would hold weight-setting back until the new chain
	// caught up.
	if p := v.st.Pending; p != nil && p.Submitted > height {
		v.log.Warn("validator: dropping a weights commit submitted at a later height than the chain's (was the chain reset?)", "submitted", p.Submitted, "height", height)
		v.st.Pending = nil
	}
	if v.st.LastSubmit > height {
		v.st.LastSubmit = 0
	}

	if h.CommitReveal != 0 && v.st.Pending != nil {
		p := v.st.Pending
		if RecordLanding(s, me, p) {
			if err := v.saveLocked(); err != nil {
				return false, err
			}
		}
		phase, epoch := CommitStatus(s, me, p, height)
		switch {
		case revealed(me, p):
			v.st.Pending = nil
		case phase == CommitInFlight || phase == CommitWaiting:
			return false, nil // too early
		case phase == CommitLost:
			v.log.Warn("validator: weights commit never landed; committing again", "submitted", p.Submitted, "now", height)
			v.st.Pending = nil
		case phase == CommitExpired:
			v.log.Warn("validator: weights commit expired unrevealed", "epoch", epoch, "now", EpochAt(s, next))
			v.st.Pending = nil
		case p.RevealedAt != 0 && height < p.RevealedAt+resubmitAfter:
			return false, nil // waiting for the reveal to land
		case h.WeightsVersion != 0 && p.VersionKey < h.WeightsVersion:
			// the subnet's key went up after the commit: the chain would
			// refuse the reveal
			v.log.Warn("validator: dropping a weights commit whose version key the subnet no longer accepts", "key", p.VersionKey, "subnet_key", h.WeightsVersion)
			v.st.Pending = nil
		case !me.Permit && me.Hotkey != s.OwnerHotkey:
			return false, fmt.Errorf("validator: hotkey %s has no validator permit on subnet %d, so the chain refuses its reveal: permits go to the largest stakes at each epoch; add stake to this hotkey and wait for the next epoch", v.hotkey, v.cfg.Netuid)
		default:
			c := types.RevealWeights{Netuid: types.Netuid(v.cfg.Netuid), UIDs: p.UIDs, Weights: p.Weights, Salt: p.Salt, VersionKey: p.VersionKey}
			if err := v.cfg.Submit(c); err != nil {
				return false, fmt.Errorf("validator: reveal: %w", err)
			}
			p.RevealedAt = height
			return true, v.saveLocked()
		}
	}
	if next < NextWeightBlock(me.LastUpdate, h.WeightsRateLimit) {
		return false, nil
	}
	if v.st.LastSubmit > me.LastUpdate {
		if height < v.st.LastSubmit+resubmitAfter {
			return false, nil // the last call has not landed yet
		}
		if v.lostWarned != v.st.LastSubmit {
			v.lostWarned = v.st.LastSubmit
			v.log.Warn("validator: weights submitted did not land: the chain refused the call or the node dropped it; its events from that block say why; submitting again",
				"submitted", v.st.LastSubmit, "last_update", me.LastUpdate, "now", height)
		}
	}
	scores := v.st.Vector(len(mg.Neurons))
	if !slices.ContainsFunc(scores, func(x float64) bool { return x > 0 }) {
		return false, nil
	}
	if !me.Permit && me.Hotkey != s.OwnerHotkey {
		return false, fmt.Errorf("validator: hotkey %s has no validator permit on subnet %d, so the chain refuses its weights: permits go to the largest stakes at each epoch; add stake to this hotkey and wait for the next epoch", v.hotkey, v.cfg.Netuid)
	}
	if key := h.WeightsVersion; key != 0 && v.cfg.WeightsVersion < key {
		return false, fmt.Errorf("validator: subnet %d requires weights version key %d and this validator sends %d: upgrade taobox (or set --weights-version to what the subnet's owner asks for)", v.cfg.Netuid, key, v.cfg.WeightsVersion)
	}
	uids, ws, err := WeightsFor(scores, h.MinAllowedWeights, h.MaxWeightLimit)
	if err != nil || len(uids) == 0 {
		return false, err
	}
	if h.CommitReveal == 0 {
		c := types.SetWeights{Netuid: types.Netuid(v.cfg.Netuid), UIDs: uids, Weights: ws, VersionKey: v.cfg.WeightsVersion}
		if err := v.cfg.Submit(c); err != nil {
			return false, fmt.Errorf("validator: set weights: %w", err)
		}
		v.st.LastSubmit = height
		return true, v.saveLocked()
	}
	if h.Tempo > 0 && EpochAt(s, next+epochMargin) != EpochAt(s, next) {
		return false, nil // too close to an epoch boundary to know the commit's epoch
	}
	p := &PendingCommit{UIDs: uids, Weights: ws, Salt: make([]byte, 16), VersionKey: v.cfg.WeightsVersion, Epoch: EpochAt(s, next), Submitted: height}
	for i := range p.Salt {
		p.Salt[i] = byte(v.rng.Uint32())
	}
	p.Hash = types.CommitHash(v.hotkey, types.Netuid(v.cfg.Netuid), uids, ws, p.Salt, p.VersionKey)
	// The salt is on disk before the commit leaves: a validator that dies
	// just after submitting can still reveal (a commit whose salt is lost
	// costs the subnet this validator's weights for the epoch). A commit
	// saved but never submitted, or whose submission failed (the node may
	// have taken it all the same: a timeout), stays pending: if it lands it
	// is revealed, if not it is found lost (CommitLost) and made again.
	last := v.st.LastSubmit
	v.st.Pending, v.st.LastSubmit = p, height
	if err := v.saveLocked(); err != nil {
		v.st.Pending, v.st.LastSubmit = nil, last
		return false, err
	}
	if err := v.cfg.Submit(types.CommitWeights{Netuid: types.Netuid(v.cfg.Netuid), Commit: p.Hash}); err != nil {
		return false, fmt.Errorf("validator: commit weights (kept pending in case the node took it): %w", err)
	}
	return true, nil
}

// revealed reports whether the neuron's stored weights row is the pending
// commit's (the chain stores the max-upscaled values, which ConvertWeights
// already produced).
func revealed(n *state.NeuronInfo, p *PendingCommit) bool {
	if p.RevealedAt == 0 || len(n.Weights) != len(p.UIDs) {
		return false
	}
	for i, e := range n.Weights {
		if e.UID != p.UIDs[i] || e.Value != p.Weights[i] {
			return false
		}
	}
	return true
}
