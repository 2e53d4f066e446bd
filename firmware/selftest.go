package firmware

import (
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"os/exec"
	"reflect"
	"slices"
	"strings"
	"time"

	"taobox/assets"
	"taobox/chain/fixed"
	"taobox/chain/yuma"
	"taobox/model"
	"taobox/model/gguf"
)

// The boot self-test: known-answer tests of everything consensus and
// serving depend on, run before any role starts. A box whose arithmetic,
// epoch or model engine gives a wrong answer (a bad CPU, a corrupt binary,
// a miscompile) must not join the network.

// kat_yuma.json holds subtensor's Yuma epoch vectors (chain/yuma/testdata),
// copied verbatim; TestKATYumaMatchesVectors keeps the copy honest.
//
//go:embed kat_yuma.json
var katYuma []byte

// Tiny model anchor: greedy continuation of tinyPrompt on the embedded
// model (assets.TinySHA256), recorded from `taobox firmware selftest` on
// the reference machine. Greedy argmax is robust to the last-bit float
// differences between CPUs; a different text means a broken engine.
const (
	tinyPrompt = "Once upon a time"
	tinyTokens = 24
)

// tinyAnchor is the expected continuation (see tinyPrompt).
const tinyAnchor = ", there was a kind boy named tim. he lived in a big house near the forest. he liked to help his"

// CheckResult is one self-test's outcome.
type CheckResult struct {
	Name    string  `json:"name"`
	OK      bool    `json:"ok"`
	Skipped bool    `json:"skipped,omitempty"`
	Detail  string  `json:"detail"` // what was checked, or why it failed
	Ms      float64 `json:"ms"`
}

// SelftestOptions choose the checks.
type SelftestOptions struct {
	// SkipModel leaves out the model engine check.
	SkipModel bool
	// GPU is the taobox-cuda whose `selftest` runs the kernels' known-answer
	// tests; "" skips the GPU check (no usable GPU).
	GPU string
	// GPUTimeout bounds taobox-cuda selftest. Default 2m.
	GPUTimeout time.Duration
	// Only, if not empty, runs only the checks whose name contains it.
	Only string
}

type check struct {
	name string
	run  func(ctx context.Context, o SelftestOptions) (string, error)
	skip func(o SelftestOptions) string // non-empty: skipped, with the reason
}

var checks = []check{
	{name: "fixed/i32f32", run: checkFixed},
	{name: "yuma/vectors", run: checkYumaVectors},
	{name: "yuma/reference", run: checkYumaReference},
	{name: "model/tiny", run: checkModel, skip: func(o SelftestOptions) string {
		if o.SkipModel {
			return "skip_model_selftest is set"
		}
		return ""
	}},
	{name: "gpu/kernels", run: checkGPU, skip: func(o SelftestOptions) string {
		if o.GPU == "" {
			return "no usable GPU (the CPU engines serve)"
		}
		return ""
	}},
}

// CheckNames lists the self-tests in the order they run.
func CheckNames() []string {
	var out []string
	for _, c := range checks {
		out = append(out, c.name)
	}
	return out
}

// Selftest runs the checks in order and returns every result; it stops at
// nothing (a failed check does not hide the others). A panic in a check
// is its failure.
func Selftest(ctx context.Context, o SelftestOptions) []CheckResult {
	var out []CheckResult
	for _, c := range checks {
		if o.Only != "" && !strings.Contains(c.name, o.Only) {
			continue
		}
		r := CheckResult{Name: c.name}
		if c.skip != nil {
			if why := c.skip(o); why != "" {
				r.OK, r.Skipped, r.Detail = true, true, why
				out = append(out, r)
				continue
			}
		}
		start := time.Now()
		detail, err := runCheck(ctx, c, o)
		r.Ms = float64(time.Since(start).Microseconds()) / 1000
		if err != nil {
			r.Detail = err.Error()
		} else {
			r.OK, r.Detail = true, detail
		}
		out = append(out, r)
	}
	return out
}

// Passed reports whether every result is OK.
func Passed(rs []CheckResult) bool {
	for _, r := range rs {
		if !r.OK {
			return false
		}
	}
	return len(rs) > 0
}

func runCheck(ctx context.Context, c check, o SelftestOptions) (detail string, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	return c.run(ctx, o)
}

// checkFixed compares I32F32 multiply, divide and saturation against exact
// math/big arithmetic on a fixed set of operands (signs, magnitudes,
// boundaries), and exp against math.Exp.
func checkFixed(context.Context, SelftestOptions) (string, error) {
	r := rand.New(rand.NewPCG(0x7a0b0c, 1))
	vals := []int64{0, 1, -1, 1 << 32, -(1 << 32), 3 << 31, math.MaxInt64, math.MinInt64, math.MaxInt64 / 3, 0x1234_5678_9abc}
	for range 200 {
		vals = append(vals, int64(r.Uint64()), r.Int64N(1<<40)-1<<39)
	}
	minI, maxI := big.NewInt(math.MinInt64), big.NewInt(math.MaxInt64)
	clamp := func(v *big.Int) int64 {
		if v.Cmp(minI) < 0 {
			return math.MinInt64
		}
		if v.Cmp(maxI) > 0 {
			return math.MaxInt64
		}
		return v.Int64()
	}
	n := 0
	for _, a := range vals {
		for _, b := range vals[:40] {
			// SatMul: floor(a*b / 2^32), clamped.
			p := new(big.Int).Mul(big.NewInt(a), big.NewInt(b))
			q, m := new(big.Int).DivMod(p, new(big.Int).Lsh(big.NewInt(1), 32), new(big.Int)) // Euclidean: floor for a positive divisor
			_ = m
			if got, want := fixed.I32F32(a).SatMul(fixed.I32F32(b)).Raw(), clamp(q); got != want {
				return "", fmt.Errorf("I32F32 SatMul(raw %d, raw %d) = %d, exact floor gives %d", a, b, got, want)
			}
			// CheckedDiv: trunc(a * 2^32 / b), None on overflow or b = 0.
			got, ok := fixed.I32F32(a).CheckedDiv(fixed.I32F32(b))
			if b == 0 {
				if ok {
					return "", fmt.Errorf("I32F32 CheckedDiv(raw %d, 0) succeeded", a)
				}
			} else {
				e := new(big.Int).Quo(new(big.Int).Lsh(big.NewInt(a), 32), big.NewInt(b))
				wantOK := e.Cmp(minI) >= 0 && e.Cmp(maxI) <= 0
				if ok != wantOK || (ok && got.Raw() != e.Int64()) {
					return "", fmt.Errorf("I32F32 CheckedDiv(raw %d, raw %d) = %d, %v; exact trunc gives %s", a, b, got.Raw(), ok, e)
				}
			}
			// SatAdd.
			s := new(big.Int).Add(big.NewInt(a), big.NewInt(b))
			if got, want := fixed.I32F32(a).SatAdd(fixed.I32F32(b)).Raw(), clamp(s); got != want {
				return "", fmt.Errorf("I32F32 SatAdd(raw %d, raw %d) = %d, want %d", a, b, got, want)
			}
			n += 3
		}
	}
	for i := -40; i <= 40; i++ {
		x := fixed.I32F32(int64(i) << 29) // -5 .. 5 in steps of 1/8
		e, ok := fixed.Exp(x)
		want := math.Exp(x.Float64())
		if !ok || math.Abs(e.Float64()-want) > 1e-6*want+1e-8 {
			return "", fmt.Errorf("exp(%v) = %v (ok %v), math.Exp gives %v", x, e, ok, want)
		}
		n++
	}
	for _, k := range []fixed.I32F32{0, fixed.I32F32Half, fixed.I32F32One} {
		if got := fixed.SigmoidSafe(k, 10<<32, k); got != fixed.I32F32Half {
			return "", fmt.Errorf("sigmoid at its midpoint %v = %v, want exactly 0.5", k, got)
		}
		n++
	}
	return fmt.Sprintf("%d operations exact against math/big and math.Exp", n), nil
}

type katEpoch struct {
	Test  string          `json:"test"`
	Epoch int             `json:"epoch"`
	Label string          `json:"label"`
	Input json.RawMessage `json:"input_state"`
	Port  struct {
		StakeWeight    []uint16     `json:"stake_weight_u16"`
		Consensus      []uint16     `json:"consensus_u16"`
		Incentive      []uint16     `json:"incentive_u16"`
		Dividends      []uint16     `json:"dividends_u16"`
		ValidatorTrust []uint16     `json:"validator_trust_u16"`
		ServerEm       []uint64     `json:"server_emission"`
		ValidatorEm    []uint64     `json:"validator_emission"`
		Emission       []uint64     `json:"emission"`
		NewPermits     []bool       `json:"new_validator_permits"`
		LastTempo      uint64       `json:"last_tempo"`
		NewBonds       [][][2]int64 `json:"new_bonds_u16"`
	} `json:"python_port_outputs"`
}

func loadKATYuma() ([]katEpoch, error) {
	var f struct {
		Epochs []katEpoch `json:"epochs"`
	}
	if err := json.Unmarshal(katYuma, &f); err != nil {
		return nil, fmt.Errorf("embedded Yuma vectors: %w", err)
	}
	return f.Epochs, nil
}

// checkYumaVectors runs subtensor's epoch vectors through yuma.Epoch and
// the CPU batch engine and requires every output bit for bit.
func checkYumaVectors(context.Context, SelftestOptions) (string, error) {
	eps, err := loadKATYuma()
	if err != nil {
		return "", err
	}
	return checkYumaVectorsOf(eps)
}

func checkYumaVectorsOf(eps []katEpoch) (string, error) {
	ctx := context.Background()
	var ins []yuma.Input
	for _, ep := range eps {
		in, err := yuma.DecodeInput(ep.Input)
		if err != nil {
			return "", fmt.Errorf("%s/%d: decode: %w", ep.Test, ep.Epoch, err)
		}
		out, err := yuma.Epoch(in)
		if err != nil {
			return "", fmt.Errorf("%s/%d: epoch: %w", ep.Test, ep.Epoch, err)
		}
		if err := compareKAT(out, &ep); err != nil {
			return "", fmt.Errorf("%s (%s): %w", ep.Test, ep.Label, err)
		}
		ins = append(ins, *in)
	}
	outs, err := yuma.NewCPUEngine(0).Epochs(ctx, ins)
	if err != nil {
		return "", fmt.Errorf("CPU batch engine: %w", err)
	}
	for i := range outs {
		if err := compareKAT(&outs[i], &eps[i]); err != nil {
			return "", fmt.Errorf("CPU batch engine, %s (%s): %w", eps[i].Test, eps[i].Label, err)
		}
	}
	return fmt.Sprintf("%d subtensor epochs bit-exact, single and batched", len(eps)), nil
}

func compareKAT(out *yuma.Output, ep *katEpoch) error {
	p := &ep.Port
	for _, c := range []struct {
		field     string
		got, want any
	}{
		{"stake_weight", out.StakeWeight, p.StakeWeight}, {"consensus", out.Consensus, p.Consensus},
		{"incentive", out.Incentive, p.Incentive}, {"dividends", out.Dividends, p.Dividends},
		{"validator_trust", out.ValidatorTrust, p.ValidatorTrust}, {"server_emission", out.ServerEmission, p.ServerEm},
		{"validator_emission", out.ValidatorEmission, p.ValidatorEm}, {"emission", out.Emission, p.Emission},
		{"new_validator_permits", out.NewValidatorPermits, p.NewPermits}, {"last_tempo", out.LastTempo, p.LastTempo},
	} {
		if !reflect.DeepEqual(c.got, c.want) {
			return fmt.Errorf("%s = %v, subtensor gives %v", c.field, c.got, c.want)
		}
	}
	if len(out.NewBonds) != len(p.NewBonds) {
		return fmt.Errorf("new_bonds: %d rows, subtensor gives %d", len(out.NewBonds), len(p.NewBonds))
	}
	for i, row := range out.NewBonds {
		if len(row) != len(p.NewBonds[i]) {
			return fmt.Errorf("new_bonds[%d] = %v, subtensor gives %v", i, row, p.NewBonds[i])
		}
		for j, e := range row {
			if int64(e.UID) != p.NewBonds[i][j][0] || int64(e.Value) != p.NewBonds[i][j][1] {
				return fmt.Errorf("new_bonds[%d] = %v, subtensor gives %v", i, row, p.NewBonds[i])
			}
		}
	}
	return nil
}

// checkYumaReference compares the production epoch with the package's
// straight-line reference implementation on seeded random subnets.
func checkYumaReference(context.Context, SelftestOptions) (string, error) {
	r := rand.New(rand.NewPCG(0xf1, 0x4a))
	n := 0
	for i := range 24 {
		v := yuma.Sparse
		if i%2 == 1 {
			v = yuma.Dense
		}
		in := yuma.RandomInput(r, v, 4)
		got, err1 := yuma.Epoch(in)
		want, err2 := yuma.Reference(in)
		if (err1 == nil) != (err2 == nil) {
			return "", fmt.Errorf("random subnet %d: epoch error %v, reference error %v", i, err1, err2)
		}
		if err1 != nil {
			continue
		}
		for _, c := range []struct {
			f         string
			got, want any
		}{{"consensus", got.Consensus, want.Consensus}, {"incentive", got.Incentive, want.Incentive},
			{"dividends", got.Dividends, want.Dividends}, {"emission", got.Emission, want.Emission}} {
			if !reflect.DeepEqual(c.got, c.want) {
				return "", fmt.Errorf("random subnet %d (n=%d): %s = %v, reference gives %v", i, in.N, c.f, c.got, c.want)
			}
		}
		n++
	}
	return fmt.Sprintf("%d random subnets equal the reference implementation", n), nil
}

// checkModel loads the embedded tiny model, checks its hash, generates
// greedily (compared with the recorded anchor) and rescores the output
// through the batched path, which must give the same log-probs bit for bit.
func checkModel(context.Context, SelftestOptions) (string, error) {
	data := assets.TinyModel()
	sum := sha256.Sum256(data)
	if hex.EncodeToString(sum[:]) != assets.TinySHA256 {
		return "", fmt.Errorf("embedded model sha256 %x, want %s: the binary is damaged", sum, assets.TinySHA256)
	}
	f, err := gguf.Parse(data)
	if err != nil {
		return "", fmt.Errorf("parse tiny model: %w", err)
	}
	m, err := model.ModelFromGGUF(f)
	if err != nil {
		return "", fmt.Errorf("load tiny model: %w", err)
	}
	defer m.Close()
	tok, err := model.TokenizerFromGGUF(f)
	if err != nil {
		return "", fmt.Errorf("tiny model tokenizer: %w", err)
	}
	prompt := tok.Encode(tinyPrompt, true)
	ids, lps, err := m.Generate(prompt, tinyTokens)
	if err != nil {
		return "", fmt.Errorf("generate: %w", err)
	}
	text := tok.DecodeContinuation(ids)
	if text != tinyAnchor {
		return "", fmt.Errorf("greedy continuation of %q is %q, want %q", tinyPrompt, text, tinyAnchor)
	}
	all := append(slices.Clone(prompt), ids...)
	scored, err := m.Score(all, len(prompt))
	if err != nil {
		return "", fmt.Errorf("score: %w", err)
	}
	for i := range lps {
		if math.Float64bits(scored[i]) != math.Float64bits(lps[i]) || math.IsNaN(lps[i]) || lps[i] > 0 {
			return "", fmt.Errorf("token %d: generated log-prob %v, rescored %v (must be equal, finite, ≤ 0)", i, lps[i], scored[i])
		}
	}
	return fmt.Sprintf("%d greedy tokens match the anchor; rescoring is bit-identical", len(ids)), nil
}

// checkGPU runs taobox-cuda's own kernel known-answer tests (`selftest`):
// every kernel on the GPU against the CPU code.
func checkGPU(ctx context.Context, o SelftestOptions) (string, error) {
	timeout := o.GPUTimeout
	if timeout <= 0 {
		timeout = 2 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, o.GPU, "selftest")
	var out tail
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	if ctx.Err() == context.DeadlineExceeded {
		return "", fmt.Errorf("%s selftest did not finish within %v", o.GPU, timeout)
	}
	if err != nil {
		return "", fmt.Errorf("%s selftest: %v: %s", o.GPU, err, lastLine(out.String()))
	}
	return lastLine(out.String()), nil
}
