package runner

// Binary form of yuma.Input and yuma.Output batches: the payloads of
// OpYumaEpochs. All integers are little endian and fixed width, so encoding
// and decoding are straight copies (a 128×256 batch is 18.1 MB out and
// 11.3 MB back; docs/gpu-runner.md).
//
//	batch   = u32 count, then count records
//	slice   = u32 len (0xFFFFFFFF: nil), then len fixed-width elements
//	          (u16, u64, i64, or one byte 0/1 per bool)
//	matrix  = u32 rows (0xFFFFFFFF: nil), u32 total entries, rows × u32 row
//	          length (0xFFFFFFFF: nil row), total × (u16 uid, u16 value)
//
// An input record is: u8 variant, u8 flags (1 yuma3, 2 liquid alpha,
// 4 commit-reveal), u32 n, u64 current block, tempo, activity cutoff,
// i32 owner uid, u64 tao weight, stake threshold, u16 max validators,
// kappa, bonds penalty, u64 bonds moving average, u16 alpha low, alpha high,
// i16 alpha steepness, u64 last mechanism step, u64 rao emission, then the
// slices last_update, block_at_registration, alpha_stake, tao_stake,
// validator_permit, commit_blocks and the matrices weights, bonds.
//
// An output record is: u64 last tempo; the slices stake_weight, consensus,
// incentive, dividends, validator_trust (u16), server_emission,
// validator_emission, emission (u64), new_validator_permits, inactive,
// bonds_written (bool); the matrix new_bonds; the raw I32F32 slices stake,
// active_stake, consensus, incentive, dividends, validator_trust (i64).
//
// Decoding never trusts a length: every count is checked against the bytes
// left before anything is allocated, so a payload of n bytes allocates
// O(n). Decoded inputs are not validated here; the engine validates them.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"unsafe"

	"taobox/chain/yuma"
	"taobox/chain/yuma/gpuplan"
)

// ErrBadPayload: a payload that does not decode.
var ErrBadPayload = errors.New("runner: malformed payload")

const nilLen = math.MaxUint32

type enc struct{ b []byte }

func (e *enc) u8(v uint8)   { e.b = append(e.b, v) }
func (e *enc) u16(v uint16) { e.b = binary.LittleEndian.AppendUint16(e.b, v) }
func (e *enc) u32(v uint32) { e.b = binary.LittleEndian.AppendUint32(e.b, v) }
func (e *enc) u64(v uint64) { e.b = binary.LittleEndian.AppendUint64(e.b, v) }

func (e *enc) slen(n int, isNil bool) bool {
	if isNil {
		e.u32(nilLen)
		return false
	}
	e.u32(uint32(n))
	return true
}

// extend grows e.b by n bytes and returns them.
func (e *enc) extend(n int) []byte {
	e.b = slices.Grow(e.b, n)
	l := len(e.b)
	e.b = e.b[:l+n]
	return e.b[l:]
}

func (e *enc) u16s(vs []uint16) { putWords(e, vs) }
func (e *enc) u64s(vs []uint64) { putWords(e, vs) }
func (e *enc) i64s(vs []int64)  { putWords(e, vs) }

// putWords writes a length-prefixed slice of little-endian words.
func putWords[T word](e *enc, vs []T) {
	if !e.slen(len(vs), vs == nil) {
		return
	}
	size := int(unsafe.Sizeof(*new(T)))
	p := e.extend(size * len(vs))
	if littleEndian {
		copy(p, gpuplan.Bytes(vs))
		return
	}
	for i, v := range vs {
		if size == 2 {
			binary.LittleEndian.PutUint16(p[2*i:], uint16(v))
		} else {
			binary.LittleEndian.PutUint64(p[8*i:], uint64(v))
		}
	}
}

func (e *enc) bools(vs []bool) {
	if e.slen(len(vs), vs == nil) {
		p := e.extend(len(vs))
		for i, v := range vs {
			p[i] = b2u(v)
		}
	}
}

func b2u(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

func (e *enc) matrix(rows [][]yuma.Entry) {
	if !e.slen(len(rows), rows == nil) {
		return
	}
	total := 0
	for _, r := range rows {
		total += len(r)
	}
	e.u32(uint32(total))
	for _, r := range rows {
		e.slen(len(r), r == nil)
	}
	p := e.extend(4 * total)
	if littleEndian {
		for _, r := range rows {
			p = p[copy(p, gpuplan.Bytes(r)):]
		}
		return
	}
	k := 0
	for _, r := range rows {
		for _, x := range r {
			binary.LittleEndian.PutUint16(p[k:], x.UID)
			binary.LittleEndian.PutUint16(p[k+2:], x.Value)
			k += 4
		}
	}
}

func matrixSize(rows [][]yuma.Entry) int {
	n := 8 + 4*len(rows)
	for _, r := range rows {
		n += 4 * len(r)
	}
	return n
}

func inputSize(in *yuma.Input) int {
	return minInputBytes + 8*(len(in.LastUpdate)+len(in.BlockAtRegistration)+len(in.AlphaStake)+len(in.TaoStake)+len(in.CommitBlocks)) +
		len(in.ValidatorPermit) + matrixSize(in.Weights) + matrixSize(in.Bonds)
}

func outputSize(o *yuma.Output) int {
	r := &o.Raw
	return minOutputBytes + 2*(len(o.StakeWeight)+len(o.Consensus)+len(o.Incentive)+len(o.Dividends)+len(o.ValidatorTrust)) +
		8*(len(o.ServerEmission)+len(o.ValidatorEmission)+len(o.Emission)) +
		len(o.NewValidatorPermits) + len(o.Inactive) + len(o.BondsWritten) + matrixSize(o.NewBonds) +
		8*(len(r.Stake)+len(r.ActiveStake)+len(r.Consensus)+len(r.Incentive)+len(r.Dividends)+len(r.ValidatorTrust))
}

// EncodeInputs appends the binary form of ins to buf.
func EncodeInputs(buf []byte, ins []yuma.Input) []byte {
	n := 4
	for i := range ins {
		n += inputSize(&ins[i])
	}
	e := enc{slices.Grow(buf, n)}
	e.u32(uint32(len(ins)))
	for i := range ins {
		in := &ins[i]
		e.u8(uint8(in.Variant))
		e.u8(b2u(in.Yuma3) | b2u(in.LiquidAlpha)<<1 | b2u(in.CommitReveal)<<2)
		e.u32(uint32(in.N))
		e.u64(in.CurrentBlock)
		e.u64(in.Tempo)
		e.u64(in.ActivityCutoffBlocks)
		e.u32(uint32(int32(in.OwnerUID)))
		e.u64(in.TaoWeight)
		e.u64(in.StakeThreshold)
		e.u16(in.MaxAllowedValidators)
		e.u16(in.Kappa)
		e.u16(in.BondsPenalty)
		e.u64(in.BondsMovingAverage)
		e.u16(in.AlphaLow)
		e.u16(in.AlphaHigh)
		e.u16(uint16(in.AlphaSteepness))
		e.u64(in.LastMechanismStepBlock)
		e.u64(in.RaoEmission)
		e.u64s(in.LastUpdate)
		e.u64s(in.BlockAtRegistration)
		e.u64s(in.AlphaStake)
		e.u64s(in.TaoStake)
		e.bools(in.ValidatorPermit)
		e.u64s(in.CommitBlocks)
		e.matrix(in.Weights)
		e.matrix(in.Bonds)
	}
	return e.b
}

// EncodeOutputs appends the binary form of outs to buf.
func EncodeOutputs(buf []byte, outs []yuma.Output) []byte {
	n := 4
	for i := range outs {
		n += outputSize(&outs[i])
	}
	e := enc{slices.Grow(buf, n)}
	e.u32(uint32(len(outs)))
	for i := range outs {
		o := &outs[i]
		e.u64(o.LastTempo)
		e.u16s(o.StakeWeight)
		e.u16s(o.Consensus)
		e.u16s(o.Incentive)
		e.u16s(o.Dividends)
		e.u16s(o.ValidatorTrust)
		e.u64s(o.ServerEmission)
		e.u64s(o.ValidatorEmission)
		e.u64s(o.Emission)
		e.bools(o.NewValidatorPermits)
		e.bools(o.Inactive)
		e.bools(o.BondsWritten)
		e.matrix(o.NewBonds)
		e.i64s(o.Raw.Stake)
		e.i64s(o.Raw.ActiveStake)
		e.i64s(o.Raw.Consensus)
		e.i64s(o.Raw.Incentive)
		e.i64s(o.Raw.Dividends)
		e.i64s(o.Raw.ValidatorTrust)
	}
	return e.b
}

// dec reads a payload; the first problem sticks in err and later reads
// return zeros.
type dec struct {
	b   []byte
	off int
	err error
	// alias: word slices and matrix entries may alias b (when aligned)
	// instead of being copied; b must then outlive the decoded values.
	alias bool
}

func (d *dec) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: at byte %d: %s", ErrBadPayload, d.off, fmt.Sprintf(format, args...))
	}
}

func (d *dec) take(n int, what string) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || n > len(d.b)-d.off {
		d.fail("%s needs %d bytes, %d left", what, n, len(d.b)-d.off)
		return nil
	}
	p := d.b[d.off : d.off+n]
	d.off += n
	return p
}

func (d *dec) u8(what string) uint8 {
	if p := d.take(1, what); p != nil {
		return p[0]
	}
	return 0
}

func (d *dec) u16(what string) uint16 {
	if p := d.take(2, what); p != nil {
		return binary.LittleEndian.Uint16(p)
	}
	return 0
}

func (d *dec) u32(what string) uint32 {
	if p := d.take(4, what); p != nil {
		return binary.LittleEndian.Uint32(p)
	}
	return 0
}

func (d *dec) u64(what string) uint64 {
	if p := d.take(8, what); p != nil {
		return binary.LittleEndian.Uint64(p)
	}
	return 0
}

// slice reads a slice length and returns the bytes of its elements (size
// each), or ok false for nil.
func (d *dec) slice(size int, what string) (p []byte, n int, ok bool) {
	l := d.u32(what)
	if d.err != nil || l == nilLen {
		return nil, 0, false
	}
	if uint64(l) > uint64(len(d.b)-d.off)/uint64(size) {
		d.fail("%s has %d elements, more than the %d bytes left hold", what, l, len(d.b)-d.off)
		return nil, 0, false
	}
	return d.take(int(l)*size, what), int(l), true
}

func (d *dec) u16s(what string) []uint16 { return getWords[uint16](d, what) }
func (d *dec) u64s(what string) []uint64 { return getWords[uint64](d, what) }
func (d *dec) i64s(what string) []int64  { return getWords[int64](d, what) }

// getWords reads a length-prefixed slice of little-endian words.
func getWords[T word](d *dec, what string) []T {
	size := int(unsafe.Sizeof(*new(T)))
	p, n, ok := d.slice(size, what)
	if !ok {
		return nil
	}
	if vs, ok := decodeAs[T](d, p, n); ok {
		return vs
	}
	vs := make([]T, n)
	if littleEndian {
		copy(gpuplan.Bytes(vs), p)
		return vs
	}
	for i := range vs {
		if size == 2 {
			vs[i] = T(binary.LittleEndian.Uint16(p[2*i:]))
		} else {
			vs[i] = T(binary.LittleEndian.Uint64(p[8*i:]))
		}
	}
	return vs
}

func (d *dec) bools(what string) []bool {
	p, n, ok := d.slice(1, what)
	if !ok {
		return nil
	}
	vs := make([]bool, n)
	for i, c := range p {
		if c > 1 {
			d.fail("%s[%d] is %d, not a bool", what, i, c)
			return nil
		}
		vs[i] = c == 1
	}
	return vs
}

func (d *dec) matrix(what string) [][]yuma.Entry {
	nrows := d.u32(what)
	if d.err != nil || nrows == nilLen {
		return nil
	}
	total := d.u32(what + " entries")
	// Each row needs 4 bytes of length, each entry 4 bytes.
	if uint64(nrows)+uint64(total) > uint64(len(d.b)-d.off)/4 {
		d.fail("%s has %d rows and %d entries, more than the %d bytes left hold", what, nrows, total, len(d.b)-d.off)
		return nil
	}
	lens := d.take(4*int(nrows), what+" row lengths")
	data := d.take(4*int(total), what+" entries")
	if d.err != nil {
		return nil
	}
	all, done := decodeAs[yuma.Entry](d, data, int(total))
	switch {
	case done:
	case littleEndian:
		all = make([]yuma.Entry, total)
		copy(gpuplan.Bytes(all), data)
	default:
		all = make([]yuma.Entry, total)
		for i := range all {
			all[i] = yuma.Entry{UID: binary.LittleEndian.Uint16(data[4*i:]), Value: binary.LittleEndian.Uint16(data[4*i+2:])}
		}
	}
	rows := make([][]yuma.Entry, nrows)
	at := uint64(0)
	for i := range rows {
		l := binary.LittleEndian.Uint32(lens[4*i:])
		if l == nilLen {
			continue
		}
		if at+uint64(l) > uint64(total) {
			d.fail("%s row %d overruns the %d entries", what, i, total)
			return nil
		}
		rows[i] = all[at : at+uint64(l) : at+uint64(l)]
		at += uint64(l)
	}
	if at != uint64(total) {
		d.fail("%s rows hold %d entries, header says %d", what, at, total)
		return nil
	}
	return rows
}

func (d *dec) count(min int, what string) int {
	n := d.u32(what)
	if d.err == nil && uint64(n) > uint64(len(d.b)-d.off)/uint64(min) {
		d.fail("%d %s, more than the %d bytes left hold", n, what, len(d.b)-d.off)
	}
	if d.err != nil {
		return 0
	}
	return int(n)
}

func (d *dec) end() error {
	if d.err == nil && d.off != len(d.b) {
		d.fail("%d bytes after the last record", len(d.b)-d.off)
	}
	return d.err
}

// minInputBytes and minOutputBytes are the smallest records: the fixed
// fields plus the length words of empty slices and matrices.
const (
	minInputBytes  = 2 + 4 + 3*8 + 4 + 2*8 + 3*2 + 8 + 3*2 + 2*8 + 6*4 + 2*4
	minOutputBytes = 8 + 11*4 + 4 + 6*4
)

// DecodeInputs reads what EncodeInputs wrote. Errors wrap ErrBadPayload.
func DecodeInputs(b []byte) ([]yuma.Input, error) { return decodeInputs(b, false) }

// decodeInputs is DecodeInputs; with alias the inputs' word slices and
// weight and bond entries may alias b (so b must stay unchanged while they
// are used: the server's request buffer or shared region during a call).
func decodeInputs(b []byte, alias bool) ([]yuma.Input, error) {
	d := &dec{b: b, alias: alias}
	ins := make([]yuma.Input, d.count(minInputBytes, "inputs"))
	for i := range ins {
		in := &ins[i]
		in.Variant = yuma.Variant(d.u8("variant"))
		flags := d.u8("flags")
		if flags > 7 {
			d.fail("input %d: unknown flags %#x", i, flags)
		}
		in.Yuma3, in.LiquidAlpha, in.CommitReveal = flags&1 != 0, flags&2 != 0, flags&4 != 0
		n := d.u32("n")
		if n > yuma.MaxUIDs {
			d.fail("input %d: n = %d is above %d", i, n, yuma.MaxUIDs)
		}
		in.N = int(n)
		in.CurrentBlock = d.u64("current_block")
		in.Tempo = d.u64("tempo")
		in.ActivityCutoffBlocks = d.u64("activity_cutoff_blocks")
		in.OwnerUID = int(int32(d.u32("owner_uid")))
		in.TaoWeight = d.u64("tao_weight")
		in.StakeThreshold = d.u64("stake_threshold")
		in.MaxAllowedValidators = d.u16("max_allowed_validators")
		in.Kappa = d.u16("kappa")
		in.BondsPenalty = d.u16("bonds_penalty")
		in.BondsMovingAverage = d.u64("bonds_moving_average")
		in.AlphaLow = d.u16("alpha_low")
		in.AlphaHigh = d.u16("alpha_high")
		in.AlphaSteepness = int16(d.u16("alpha_steepness"))
		in.LastMechanismStepBlock = d.u64("last_mechanism_step_block")
		in.RaoEmission = d.u64("rao_emission")
		in.LastUpdate = d.u64s("last_update")
		in.BlockAtRegistration = d.u64s("block_at_registration")
		in.AlphaStake = d.u64s("alpha_stake")
		in.TaoStake = d.u64s("tao_stake")
		in.ValidatorPermit = d.bools("validator_permit")
		in.CommitBlocks = d.u64s("commit_blocks")
		in.Weights = d.matrix("weights")
		in.Bonds = d.matrix("bonds")
		if d.err != nil {
			return nil, fmt.Errorf("input %d: %w", i, d.err)
		}
	}
	if err := d.end(); err != nil {
		return nil, err
	}
	return ins, nil
}

// DecodeOutputs reads what EncodeOutputs wrote. Errors wrap ErrBadPayload.
func DecodeOutputs(b []byte) ([]yuma.Output, error) {
	d := &dec{b: b}
	outs := make([]yuma.Output, d.count(minOutputBytes, "outputs"))
	for i := range outs {
		o := &outs[i]
		o.LastTempo = d.u64("last_tempo")
		o.StakeWeight = d.u16s("stake_weight")
		o.Consensus = d.u16s("consensus")
		o.Incentive = d.u16s("incentive")
		o.Dividends = d.u16s("dividends")
		o.ValidatorTrust = d.u16s("validator_trust")
		o.ServerEmission = d.u64s("server_emission")
		o.ValidatorEmission = d.u64s("validator_emission")
		o.Emission = d.u64s("emission")
		o.NewValidatorPermits = d.bools("new_validator_permits")
		o.Inactive = d.bools("inactive")
		o.BondsWritten = d.bools("bonds_written")
		o.NewBonds = d.matrix("new_bonds")
		o.Raw.Stake = d.i64s("raw.stake")
		o.Raw.ActiveStake = d.i64s("raw.active_stake")
		o.Raw.Consensus = d.i64s("raw.consensus")
		o.Raw.Incentive = d.i64s("raw.incentive")
		o.Raw.Dividends = d.i64s("raw.dividends")
		o.Raw.ValidatorTrust = d.i64s("raw.validator_trust")
		if d.err != nil {
			return nil, fmt.Errorf("output %d: %w", i, d.err)
		}
	}
	if err := d.end(); err != nil {
		return nil, err
	}
	return outs, nil
}
