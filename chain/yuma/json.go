package yuma

// JSON form of Input and Output: the contract of `taobox yuma epoch|batch`.
//
// An input is one JSON object whose fields are those of an input_state in
// vectors/yuma/epochs.json (yuma-epoch.md §3). An output is one JSON object
// with the fields of python_port_outputs that the chain stores (§4 step 13).
// Integers are read exactly (up to 2^64-1) and never pass through float64.
//
// Design note: decoding is two passes. encoding/json first checks the syntax,
// so a malformed document is always reported as such, with its byte offset.
// Then a small cursor walks the now well-formed tokens against the schema.
// Unmarshalling into a struct would quietly accept what the contract rejects
// (duplicate keys, "4" for 4, [1,2,3] for a pair, 1e3) and name Go fields
// rather than JSON paths in errors; json.Decoder.Token allocates per jsonToken
// (16 MB/s here). The cursor allocates only the decoded slices.

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"strings"
)

// MaxJSONSize bounds the documents DecodeInput and DecodeInputs accept.
const MaxJSONSize = 256 << 20

// maxListLen bounds every list in an input: per-uid lists, matrix rows and
// the entries of one row all have at most MaxUIDs elements in a valid input,
// so the bound only stops a hostile document from allocating early.
const maxListLen = MaxUIDs

// DecodeInput reads one epoch input (a JSON object) and validates it. Every
// error it returns is a *FieldError whose Field is the JSON path of the
// offending value ("input" for the document as a whole).
//
// All fields are required, except that commit_blocks may be absent or null
// (no commits), and one of activity_cutoff_factor_milli and
// activity_cutoff_blocks may be absent: given only the factor, the cutoff is
// max(factor*tempo/1000, 1) as on chain; given both, they must agree.
func DecodeInput(data []byte) (*Input, error) {
	r, err := newTokenReader(data)
	if err != nil {
		return nil, err
	}
	in, err := r.input("")
	if err != nil {
		return nil, err
	}
	return in, nil
}

// DecodeInputs reads a JSON array of epoch inputs, as DecodeInput reads one.
// Error fields are prefixed with the index of the input: "[3].weights[0][1]".
func DecodeInputs(data []byte) ([]Input, error) {
	r, err := newTokenReader(data)
	if err != nil {
		return nil, err
	}
	if tok := r.next(); tok.kind != '[' {
		return nil, fieldErr("input", "must be a list of epoch inputs, got %s", tok)
	}
	ins := []Input{}
	for i := 0; r.more(); i++ {
		in, err := r.input("[" + strconv.Itoa(i) + "]")
		if err != nil {
			return nil, err
		}
		ins = append(ins, *in)
	}
	return ins, nil
}

// EncodeInput writes in as DecodeInput reads it: DecodeInput(EncodeInput(in))
// equals in. The cutoff is written as activity_cutoff_blocks only, and the
// variant as "sparse" or "dense". It returns in.Validate's error, if any.
func EncodeInput(in *Input) ([]byte, error) {
	if err := in.Validate(); err != nil {
		return nil, err
	}
	w := jsonWriter{buf: make([]byte, 0, 512+16*in.N)}
	w.key("n", true)
	w.uint(uint64(in.N))
	w.key("current_block", false)
	w.uint(in.CurrentBlock)
	w.key("tempo", false)
	w.uint(in.Tempo)
	w.key("last_update", false)
	w.uints(in.LastUpdate)
	w.key("block_at_registration", false)
	w.uints(in.BlockAtRegistration)
	w.key("alpha_stake", false)
	w.uints(in.AlphaStake)
	w.key("tao_stake", false)
	w.uints(in.TaoStake)
	w.key("tao_weight_u64", false)
	w.uint(in.TaoWeight)
	w.key("stake_threshold", false)
	w.uint(in.StakeThreshold)
	w.key("owner_uid", false)
	if in.OwnerUID < 0 {
		w.raw("null")
	} else {
		w.uint(uint64(in.OwnerUID))
	}
	w.key("validator_permit", false)
	w.bools(in.ValidatorPermit)
	w.key("max_allowed_validators", false)
	w.uint(uint64(in.MaxAllowedValidators))
	w.key("kappa", false)
	w.uint(uint64(in.Kappa))
	w.key("bonds_penalty", false)
	w.uint(uint64(in.BondsPenalty))
	w.key("bonds_moving_average", false)
	w.uint(in.BondsMovingAverage)
	w.key("yuma3", false)
	w.bool(in.Yuma3)
	w.key("liquid_alpha", false)
	w.bool(in.LiquidAlpha)
	w.key("alpha_values", false)
	w.raw("[")
	w.uint(uint64(in.AlphaLow))
	w.raw(",")
	w.uint(uint64(in.AlphaHigh))
	w.raw("]")
	w.key("alpha_sigmoid_steepness", false)
	w.buf = strconv.AppendInt(w.buf, int64(in.AlphaSteepness), 10)
	w.key("last_mechanism_step_block", false)
	w.uint(in.LastMechanismStepBlock)
	w.key("commit_reveal", false)
	w.bool(in.CommitReveal)
	w.key("commit_blocks", false)
	if in.CommitBlocks == nil {
		w.raw("null")
	} else {
		w.raw("[")
		for i, b := range in.CommitBlocks {
			if i > 0 {
				w.raw(",")
			}
			if b == NoCommit {
				w.raw("null")
			} else {
				w.uint(b)
			}
		}
		w.raw("]")
	}
	w.key("activity_cutoff_blocks", false)
	w.uint(in.ActivityCutoffBlocks)
	w.key("weights", false)
	w.matrix(in.Weights)
	w.key("bonds", false)
	w.matrix(in.Bonds)
	w.key("rao_emission", false)
	w.uint(in.RaoEmission)
	w.key("variant", false)
	w.raw(strconv.Quote(in.Variant.String()))
	w.raw("}")
	return w.buf, nil
}

// EncodeOutput writes the stored terms of out as one JSON object with the
// fields, order and encoding of the vectors' python_port_outputs:
// stake_weight_u16, consensus_u16, incentive_u16, dividends_u16,
// validator_trust_u16, server_emission, validator_emission, emission,
// new_validator_permits, inactive and new_bonds_u16 (rows of [uid, value]
// pairs). A nil slice or row is written as [], never null.
func EncodeOutput(out *Output) ([]byte, error) {
	if out == nil {
		return nil, errors.New("yuma: EncodeOutput: nil output")
	}
	w := jsonWriter{buf: make([]byte, 0, 256+64*len(out.Emission))}
	w.key("stake_weight_u16", true)
	w.u16s(out.StakeWeight)
	w.key("consensus_u16", false)
	w.u16s(out.Consensus)
	w.key("incentive_u16", false)
	w.u16s(out.Incentive)
	w.key("dividends_u16", false)
	w.u16s(out.Dividends)
	w.key("validator_trust_u16", false)
	w.u16s(out.ValidatorTrust)
	w.key("server_emission", false)
	w.uints(out.ServerEmission)
	w.key("validator_emission", false)
	w.uints(out.ValidatorEmission)
	w.key("emission", false)
	w.uints(out.Emission)
	w.key("new_validator_permits", false)
	w.bools(out.NewValidatorPermits)
	w.key("inactive", false)
	w.bools(out.Inactive)
	w.key("new_bonds_u16", false)
	w.matrix(out.NewBonds)
	w.raw("}")
	return w.buf, nil
}

// jsonWriter appends compact JSON to buf.
type jsonWriter struct{ buf []byte }

func (w *jsonWriter) raw(s string)  { w.buf = append(w.buf, s...) }
func (w *jsonWriter) uint(v uint64) { w.buf = strconv.AppendUint(w.buf, v, 10) }
func (w *jsonWriter) bool(v bool)   { w.buf = strconv.AppendBool(w.buf, v) }

// key starts the object (first) or the next member, and writes "name":.
func (w *jsonWriter) key(name string, first bool) {
	if first {
		w.buf = append(w.buf, '{')
	} else {
		w.buf = append(w.buf, ',')
	}
	w.buf = append(w.buf, '"')
	w.buf = append(w.buf, name...)
	w.buf = append(w.buf, '"', ':')
}

func (w *jsonWriter) uints(vs []uint64) {
	w.buf = append(w.buf, '[')
	for i, v := range vs {
		if i > 0 {
			w.buf = append(w.buf, ',')
		}
		w.buf = strconv.AppendUint(w.buf, v, 10)
	}
	w.buf = append(w.buf, ']')
}

func (w *jsonWriter) u16s(vs []uint16) {
	w.buf = append(w.buf, '[')
	for i, v := range vs {
		if i > 0 {
			w.buf = append(w.buf, ',')
		}
		w.buf = strconv.AppendUint(w.buf, uint64(v), 10)
	}
	w.buf = append(w.buf, ']')
}

func (w *jsonWriter) bools(vs []bool) {
	w.buf = append(w.buf, '[')
	for i, v := range vs {
		if i > 0 {
			w.buf = append(w.buf, ',')
		}
		w.buf = strconv.AppendBool(w.buf, v)
	}
	w.buf = append(w.buf, ']')
}

func (w *jsonWriter) matrix(rows [][]Entry) {
	w.buf = append(w.buf, '[')
	for i, row := range rows {
		if i > 0 {
			w.buf = append(w.buf, ',')
		}
		w.buf = append(w.buf, '[')
		for k, e := range row {
			if k > 0 {
				w.buf = append(w.buf, ',')
			}
			w.buf = append(w.buf, '[')
			w.buf = strconv.AppendUint(w.buf, uint64(e.UID), 10)
			w.buf = append(w.buf, ',')
			w.buf = strconv.AppendUint(w.buf, uint64(e.Value), 10)
			w.buf = append(w.buf, ']')
		}
		w.buf = append(w.buf, ']')
	}
	w.buf = append(w.buf, ']')
}

// jsonReader walks the tokens of a document whose syntax encoding/json has
// checked. It relies on that check: on anything else it would misread or
// panic.
type jsonReader struct {
	data []byte
	pos  int
}

// jsonToken is one JSON token: kind is '{', '}', '[', ']', '"' (a string), '0' (a
// number), 't', 'f' or 'n' (null), and raw its text, quotes included.
type jsonToken struct {
	kind byte
	raw  []byte
}

// jsonSyntaxOnly accepts any JSON value; unmarshalling into it checks syntax only.
type jsonSyntaxOnly struct{}

func (*jsonSyntaxOnly) UnmarshalJSON([]byte) error { return nil }

func newTokenReader(data []byte) (*jsonReader, error) {
	if len(data) > MaxJSONSize {
		return nil, fieldErr("input", "is %d bytes, more than the limit of %d (256 MiB)", len(data), MaxJSONSize)
	}
	if !json.Valid(data) {
		// Unmarshal says where the syntax breaks; jsonSyntaxOnly keeps it from
		// building anything.
		err := json.Unmarshal(data, new(jsonSyntaxOnly))
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return nil, fieldErr("input", "is not valid JSON: %v (at byte offset %d)", se, se.Offset)
		}
		return nil, fieldErr("input", "is not valid JSON: %v", err)
	}
	return &jsonReader{data: data}, nil
}

// skip moves past white space and the separators ',' and ':', which a valid
// document has only where the grammar puts them.
func (r *jsonReader) skip() {
	for r.pos < len(r.data) {
		switch r.data[r.pos] {
		case ' ', '\t', '\n', '\r', ',', ':':
			r.pos++
		default:
			return
		}
	}
}

// more reports whether the list or object being read has another element.
func (r *jsonReader) more() bool {
	r.skip()
	return r.data[r.pos] != ']' && r.data[r.pos] != '}'
}

// next returns the next token.
func (r *jsonReader) next() jsonToken {
	r.skip()
	start := r.pos
	kind := r.data[r.pos]
	r.pos++
	switch kind {
	case '{', '}', '[', ']':
	case '"':
		for r.data[r.pos] != '"' {
			if r.data[r.pos] == '\\' {
				r.pos++ // the escaped byte does not end the string
			}
			r.pos++
		}
		r.pos++
	case 't', 'n': // true, null
		r.pos += 3
	case 'f': // false
		r.pos += 4
	default:
		kind = '0'
		for r.pos < len(r.data) && strings.IndexByte("0123456789+-.eE", r.data[r.pos]) >= 0 {
			r.pos++
		}
	}
	return jsonToken{kind: kind, raw: r.data[start:r.pos]}
}

// str returns the value of a string token.
func (t jsonToken) str() string {
	body := t.raw[1 : len(t.raw)-1]
	if bytes.IndexByte(body, '\\') < 0 {
		return string(body)
	}
	var s string
	if err := json.Unmarshal(t.raw, &s); err != nil {
		panic("yuma: valid JSON string " + strconv.Quote(string(t.raw)) + " does not unquote: " + err.Error())
	}
	return s
}

// String describes a jsonToken for an error message, on one line and briefly.
func (t jsonToken) String() string {
	switch t.kind {
	case 'n':
		return "null"
	case 't':
		return "true"
	case 'f':
		return "false"
	case '0':
		return clipString(string(t.raw))
	case '"':
		return "the string " + strconv.Quote(clipString(t.str()))
	case '{':
		return "an object"
	case '[':
		return "a list"
	}
	return "the end of a list or object"
}

// jsonDigits returns the value of a run of decimal digits, and false when b is
// empty, holds anything else or overflows u64.
func jsonDigits(b []byte) (uint64, bool) {
	var v uint64
	for _, c := range b {
		d := uint64(c - '0')
		if d > 9 || v > (math.MaxUint64-d)/10 {
			return 0, false
		}
		v = v*10 + d
	}
	return v, len(b) > 0
}

// inputFieldID numbers the fields of an input object.
type inputFieldID int

const (
	jfN inputFieldID = iota
	jfCurrentBlock
	jfTempo
	jfCutoffFactor
	jfLastUpdate
	jfBlockAtRegistration
	jfAlphaStake
	jfTaoStake
	jfTaoWeight
	jfStakeThreshold
	jfOwnerUID
	jfValidatorPermit
	jfMaxAllowedValidators
	jfKappa
	jfBondsPenalty
	jfBondsMovingAverage
	jfYuma3
	jfLiquidAlpha
	jfAlphaValues
	jfAlphaSteepness
	jfLastMechanismStepBlock
	jfCommitReveal
	jfCommitBlocks
	jfCutoffBlocks
	jfWeights
	jfBonds
	jfRaoEmission
	jfVariant
	numInputFields
)

// inputFieldNames are the JSON names, in the order of the vectors.
var inputFieldNames = [numInputFields]string{
	"n", "current_block", "tempo", "activity_cutoff_factor_milli",
	"last_update", "block_at_registration", "alpha_stake", "tao_stake",
	"tao_weight_u64", "stake_threshold", "owner_uid", "validator_permit",
	"max_allowed_validators", "kappa", "bonds_penalty", "bonds_moving_average",
	"yuma3", "liquid_alpha", "alpha_values", "alpha_sigmoid_steepness",
	"last_mechanism_step_block", "commit_reveal", "commit_blocks",
	"activity_cutoff_blocks", "weights", "bonds", "rao_emission", "variant",
}

var inputFieldIDs = func() map[string]inputFieldID {
	m := make(map[string]inputFieldID, numInputFields)
	for id, name := range inputFieldNames {
		m[name] = inputFieldID(id)
	}
	return m
}()

// input reads one input object; prefix ("" or "[i]") is put before every
// field name in errors.
func (r *jsonReader) input(prefix string) (*Input, error) {
	in, err := r.inputObject(prefix)
	if err != nil {
		return nil, err
	}
	if err := in.Validate(); err != nil {
		return nil, prefixFieldError(prefix, err)
	}
	return in, nil
}

func (r *jsonReader) inputObject(prefix string) (*Input, error) {
	path := func(name string) string {
		if prefix == "" {
			return name
		}
		return prefix + "." + name
	}
	if tok := r.next(); tok.kind != '{' {
		where := "input"
		if prefix != "" {
			where = prefix
		}
		return nil, fieldErr(where, "must be a JSON object, got %s", tok)
	}
	in := &Input{OwnerUID: -1}
	var seen [numInputFields]bool
	var factor uint64
	for r.more() {
		name := r.next().str() // object keys are strings
		id, ok := inputFieldIDs[name]
		if !ok {
			return nil, fieldErr(path(quoteFieldName(name)), "is not a field of an epoch input")
		}
		if seen[id] {
			return nil, fieldErr(path(name), "appears twice")
		}
		seen[id] = true
		tok := r.next()
		f := path(name)
		var err error
		switch id {
		case jfN:
			var v uint64
			if v, err = tokenUintField(f, tok, MaxUIDs); err == nil {
				in.N = int(v)
			}
		case jfCurrentBlock:
			in.CurrentBlock, err = tokenUintField(f, tok, math.MaxUint64)
		case jfTempo:
			in.Tempo, err = tokenUintField(f, tok, math.MaxUint64)
		case jfCutoffFactor:
			factor, err = tokenUintField(f, tok, math.MaxUint64)
		case jfLastUpdate:
			in.LastUpdate, err = r.uintList(f, tok)
		case jfBlockAtRegistration:
			in.BlockAtRegistration, err = r.uintList(f, tok)
		case jfAlphaStake:
			in.AlphaStake, err = r.uintList(f, tok)
		case jfTaoStake:
			in.TaoStake, err = r.uintList(f, tok)
		case jfTaoWeight:
			in.TaoWeight, err = tokenUintField(f, tok, math.MaxUint64)
		case jfStakeThreshold:
			in.StakeThreshold, err = tokenUintField(f, tok, math.MaxUint64)
		case jfOwnerUID:
			if tok.kind != 'n' {
				v, ok := tokenUint(tok, MaxUIDs-1)
				if !ok {
					err = fieldErr(f, "must be a uid in [0, %d] or null, got %s", MaxUIDs-1, tok)
				}
				in.OwnerUID = int(v)
			}
		case jfValidatorPermit:
			in.ValidatorPermit, err = r.boolList(f, tok)
		case jfMaxAllowedValidators:
			in.MaxAllowedValidators, err = tokenU16Field(f, tok)
		case jfKappa:
			in.Kappa, err = tokenU16Field(f, tok)
		case jfBondsPenalty:
			in.BondsPenalty, err = tokenU16Field(f, tok)
		case jfBondsMovingAverage:
			in.BondsMovingAverage, err = tokenUintField(f, tok, math.MaxUint64)
		case jfYuma3:
			in.Yuma3, err = tokenBoolField(f, tok)
		case jfLiquidAlpha:
			in.LiquidAlpha, err = tokenBoolField(f, tok)
		case jfAlphaValues:
			in.AlphaLow, in.AlphaHigh, err = r.pair(func() string { return f }, tok, "[low, high]")
		case jfAlphaSteepness:
			in.AlphaSteepness, err = tokenI16Field(f, tok)
		case jfLastMechanismStepBlock:
			in.LastMechanismStepBlock, err = tokenUintField(f, tok, math.MaxUint64)
		case jfCommitReveal:
			in.CommitReveal, err = tokenBoolField(f, tok)
		case jfCommitBlocks:
			in.CommitBlocks, err = r.commitBlocks(f, tok)
		case jfCutoffBlocks:
			in.ActivityCutoffBlocks, err = tokenUintField(f, tok, math.MaxUint64)
		case jfWeights:
			in.Weights, err = r.matrix(f, tok)
		case jfBonds:
			in.Bonds, err = r.matrix(f, tok)
		case jfRaoEmission:
			in.RaoEmission, err = tokenUintField(f, tok, math.MaxUint64)
		case jfVariant:
			in.Variant, err = tokenVariantField(f, tok)
		}
		if err != nil {
			return nil, err
		}
	}
	r.next() // '}'

	for id, name := range inputFieldNames {
		switch inputFieldID(id) {
		case jfCommitBlocks, jfCutoffFactor, jfCutoffBlocks:
			continue
		}
		if !seen[id] {
			return nil, fieldErr(path(name), "is missing")
		}
	}
	switch {
	case !seen[jfCutoffFactor] && !seen[jfCutoffBlocks]:
		return nil, fieldErr(path("activity_cutoff_blocks"), "is missing (give it or activity_cutoff_factor_milli)")
	case seen[jfCutoffFactor]:
		blocks := cutoffBlocks(factor, in.Tempo)
		if !seen[jfCutoffBlocks] {
			in.ActivityCutoffBlocks = blocks
		} else if in.ActivityCutoffBlocks != blocks {
			return nil, fieldErr(path("activity_cutoff_blocks"),
				"is %d, but activity_cutoff_factor_milli %d at tempo %d gives %d",
				in.ActivityCutoffBlocks, factor, in.Tempo, blocks)
		}
	}
	return in, nil
}

// cutoffBlocks is get_activity_cutoff_blocks: max(factor*tempo/1000, 1), with
// the product saturating at u64::MAX (yuma-epoch.md §3).
func cutoffBlocks(factorMilli, tempo uint64) uint64 {
	prod := uint64(math.MaxUint64)
	if tempo == 0 || factorMilli <= math.MaxUint64/tempo {
		prod = factorMilli * tempo
	}
	return max(prod/1000, 1)
}

// prefixFieldError puts prefix ("[i]") before the field of a *FieldError.
func prefixFieldError(prefix string, err error) error {
	var fe *FieldError
	if prefix == "" || !errors.As(err, &fe) {
		return err
	}
	return &FieldError{Field: prefix + "." + fe.Field, Problem: fe.Problem}
}

// list calls each for every element of the list that starts with tok.
func (r *jsonReader) list(field string, tok jsonToken, what string, each func(i int, tok jsonToken) error) error {
	if tok.kind != '[' {
		return fieldErr(field, "must be a list of %s, got %s", what, tok)
	}
	for i := 0; r.more(); i++ {
		if i == maxListLen {
			return fieldErr(field, "has more than %d entries", maxListLen)
		}
		if err := each(i, r.next()); err != nil {
			return err
		}
	}
	r.next() // ']'
	return nil
}

func jsonIndex(field string, i int) string { return field + "[" + strconv.Itoa(i) + "]" }

// Element paths such as "weights[3][1]" are built only for an error: the
// lists of a large input have millions of elements.

func (r *jsonReader) uintList(field string, tok jsonToken) ([]uint64, error) {
	var vs []uint64
	err := r.list(field, tok, "integers", func(i int, tok jsonToken) error {
		v, ok := tokenUint(tok, math.MaxUint64)
		if !ok {
			return tokenUintError(jsonIndex(field, i), tok, math.MaxUint64)
		}
		vs = append(vs, v)
		return nil
	})
	return vs, err
}

func (r *jsonReader) boolList(field string, tok jsonToken) ([]bool, error) {
	var vs []bool
	err := r.list(field, tok, "true/false values", func(i int, tok jsonToken) error {
		if tok.kind != 't' && tok.kind != 'f' {
			return tokenBoolError(jsonIndex(field, i), tok)
		}
		vs = append(vs, tok.kind == 't')
		return nil
	})
	return vs, err
}

// commitBlocks reads null (no commits) or a list of blocks with null for
// NoCommit. An empty list stays distinct from null.
func (r *jsonReader) commitBlocks(field string, tok jsonToken) ([]uint64, error) {
	if tok.kind == 'n' {
		return nil, nil
	}
	vs := []uint64{}
	err := r.list(field, tok, "blocks or nulls", func(i int, tok jsonToken) error {
		if tok.kind == 'n' {
			vs = append(vs, NoCommit)
			return nil
		}
		v, ok := tokenUint(tok, math.MaxUint64)
		if !ok {
			return fieldErr(jsonIndex(field, i), "must be a block number in [0, %d] or null, got %s", uint64(math.MaxUint64), tok)
		}
		vs = append(vs, v)
		return nil
	})
	return vs, err
}

// pair reads a list of exactly two u16 values; field gives its path.
func (r *jsonReader) pair(field func() string, tok jsonToken, shape string) (a, b uint16, err error) {
	if tok.kind != '[' {
		return 0, 0, fieldErr(field(), "must be a list of two integers %s, got %s", shape, tok)
	}
	var got [2]uint16
	n := 0
	for ; r.more(); n++ {
		if n == 2 {
			return 0, 0, fieldErr(field(), "must have exactly 2 entries %s, got more", shape)
		}
		tok := r.next()
		v, ok := tokenUint(tok, math.MaxUint16)
		if !ok {
			return 0, 0, tokenUintError(jsonIndex(field(), n), tok, math.MaxUint16)
		}
		got[n] = uint16(v)
	}
	r.next() // ']'
	if n != 2 {
		return 0, 0, fieldErr(field(), "must have exactly 2 entries %s, got %d", shape, n)
	}
	return got[0], got[1], nil
}

// matrix reads sparse rows: a list of rows, each a list of [uid, value] pairs.
func (r *jsonReader) matrix(field string, tok jsonToken) ([][]Entry, error) {
	var rows [][]Entry
	err := r.list(field, tok, "rows", func(i int, tok jsonToken) error {
		rowField := func() string { return jsonIndex(field, i) }
		if tok.kind != '[' {
			return fieldErr(rowField(), "must be a list of [uid, value] pairs, got %s", tok)
		}
		var row []Entry
		for k := 0; r.more(); k++ {
			if k == maxListLen {
				return fieldErr(rowField(), "has more than %d entries", maxListLen)
			}
			uid, v, err := r.pair(func() string { return jsonIndex(rowField(), k) }, r.next(), "[uid, value]")
			if err != nil {
				return err
			}
			row = append(row, Entry{UID: uid, Value: v})
		}
		r.next() // ']'
		rows = append(rows, row)
		return nil
	})
	return rows, err
}

// tokenUint returns the value of an integer jsonToken in [0, max]; "-1", "1.5"
// and "1e3" are not.
func tokenUint(tok jsonToken, max uint64) (uint64, bool) {
	if tok.kind != '0' {
		return 0, false
	}
	v, ok := jsonDigits(tok.raw)
	return v, ok && v <= max
}

func tokenUintError(field string, tok jsonToken, max uint64) error {
	return fieldErr(field, "must be an integer in [0, %d], got %s", max, tok)
}

func tokenUintField(field string, tok jsonToken, max uint64) (uint64, error) {
	v, ok := tokenUint(tok, max)
	if !ok {
		return 0, tokenUintError(field, tok, max)
	}
	return v, nil
}

func tokenU16Field(field string, tok jsonToken) (uint16, error) {
	v, err := tokenUintField(field, tok, math.MaxUint16)
	return uint16(v), err
}

func tokenI16Field(field string, tok jsonToken) (int16, error) {
	if tok.kind == '0' {
		if tok.raw[0] != '-' {
			if v, ok := jsonDigits(tok.raw); ok && v <= math.MaxInt16 {
				return int16(v), nil
			}
		} else if v, ok := jsonDigits(tok.raw[1:]); ok && v <= -math.MinInt16 {
			return int16(-int64(v)), nil
		}
	}
	return 0, fieldErr(field, "must be an integer in [%d, %d], got %s", math.MinInt16, math.MaxInt16, tok)
}

func tokenBoolError(field string, tok jsonToken) error {
	return fieldErr(field, "must be true or false, got %s", tok)
}

func tokenBoolField(field string, tok jsonToken) (bool, error) {
	if tok.kind != 't' && tok.kind != 'f' {
		return false, tokenBoolError(field, tok)
	}
	return tok.kind == 't', nil
}

// tokenVariantField accepts the vectors' descriptive names, such as
// "sparse (epoch_mechanism / Pallet::epoch)", by their first word.
func tokenVariantField(field string, tok jsonToken) (Variant, error) {
	if tok.kind == '"' {
		switch s := tok.str(); {
		case strings.HasPrefix(s, "sparse"):
			return Sparse, nil
		case strings.HasPrefix(s, "dense"):
			return Dense, nil
		}
	}
	return 0, fieldErr(field, `must be a string starting with "sparse" or "dense", got %s`, tok)
}

// clipString shortens s to at most 40 bytes (plus an ellipsis).
func clipString(s string) string {
	const limit = 40
	if len(s) <= limit {
		return s
	}
	return s[:limit] + "..."
}

// quoteFieldName returns a field name as is when it is a plain identifier, and
// quoted otherwise, so an error message stays on one line.
func quoteFieldName(s string) string {
	for _, c := range []byte(s) {
		if !(c == '_' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return strconv.Quote(clipString(s))
		}
	}
	if s == "" || len(s) > 40 {
		return strconv.Quote(clipString(s))
	}
	return s
}
