package yuma

// JSON form of Input and Output: the contract of `taobox yuma epoch|batch`.
//
// An input is one JSON object whose fields are those of an input_state in
// vectors/yuma/epochs.json (yuma-epoch.md §3). An output is one JSON object
// with the fields of python_port_outputs that the chain stores (§4 step 13).
// Integers are read exactly (up to 2^64-1) and never pass through float64.
//
// Design note: decoding walks json.Decoder tokens instead of unmarshalling
// into a struct. encoding/json would quietly accept what the contract
// rejects (duplicate keys, "4" for 4, [1,2,3] for a pair) and its errors name
// Go fields rather than JSON paths. Syntax is checked in a first pass so that
// a malformed document is always reported as such, with its byte offset.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
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
	tok, err := r.next()
	if err != nil {
		return nil, err
	}
	if tok != json.Delim('[') {
		return nil, fieldErr("input", "must be a list of epoch inputs, got %s", describeToken(tok))
	}
	ins := []Input{}
	for i := 0; r.dec.More(); i++ {
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

// tokenReader walks the tokens of a document whose syntax is known to be valid.
type tokenReader struct {
	dec *json.Decoder
}

// noopValue accepts any JSON value; unmarshalling into it checks syntax only.
type noopValue struct{}

func (*noopValue) UnmarshalJSON([]byte) error { return nil }

func newTokenReader(data []byte) (*tokenReader, error) {
	if len(data) > MaxJSONSize {
		return nil, fieldErr("input", "is %d bytes, more than the limit of %d (256 MiB)", len(data), MaxJSONSize)
	}
	if err := json.Unmarshal(data, new(noopValue)); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return nil, fieldErr("input", "is not valid JSON: %v (at byte offset %d)", se, se.Offset)
		}
		return nil, fieldErr("input", "is not valid JSON: %v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	return &tokenReader{dec: dec}, nil
}

// next returns the next token. Syntax was checked up front, so an error here
// means encoding/json and the first pass disagree; it is still reported.
func (r *tokenReader) next() (json.Token, error) {
	tok, err := r.dec.Token()
	if err != nil {
		return nil, fieldErr("input", "is not valid JSON: %v (at byte offset %d)", err, r.dec.InputOffset())
	}
	return tok, nil
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
func (r *tokenReader) input(prefix string) (*Input, error) {
	in, err := r.inputObject(prefix)
	if err != nil {
		return nil, err
	}
	if err := in.Validate(); err != nil {
		return nil, prefixFieldError(prefix, err)
	}
	return in, nil
}

func (r *tokenReader) inputObject(prefix string) (*Input, error) {
	path := func(name string) string {
		if prefix == "" {
			return name
		}
		return prefix + "." + name
	}
	tok, err := r.next()
	if err != nil {
		return nil, err
	}
	if tok != json.Delim('{') {
		where := "input"
		if prefix != "" {
			where = prefix
		}
		return nil, fieldErr(where, "must be a JSON object, got %s", describeToken(tok))
	}
	in := &Input{OwnerUID: -1}
	var seen [numInputFields]bool
	var factor uint64
	for r.dec.More() {
		tok, err := r.next()
		if err != nil {
			return nil, err
		}
		name := tok.(string) // object keys are strings
		id, ok := inputFieldIDs[name]
		if !ok {
			return nil, fieldErr(path(quoteFieldName(name)), "is not a field of an epoch input")
		}
		if seen[id] {
			return nil, fieldErr(path(name), "appears twice")
		}
		seen[id] = true
		if tok, err = r.next(); err != nil {
			return nil, err
		}
		f := path(name)
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
			if tok != nil {
				var v uint64
				if v, err = tokenUintField(f, tok, MaxUIDs-1); err != nil {
					err = fieldErr(f, "must be a uid in [0, %d] or null, got %s", MaxUIDs-1, describeToken(tok))
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
			in.AlphaLow, in.AlphaHigh, err = r.pair(f, tok, "[low, high]")
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
	if _, err := r.next(); err != nil { // '}'
		return nil, err
	}

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

// CutoffBlocks is get_activity_cutoff_blocks: max(factor*tempo/1000, 1), with
// the product saturating at u64::MAX (yuma-epoch.md §3).
func cutoffBlocks(factorMilli, tempo uint64) uint64 {
	prod := uint64(math.MaxUint64)
	if tempo == 0 || factorMilli <= math.MaxUint64/tempo {
		prod = factorMilli * tempo
	}
	return max(prod/1000, 1)
}

// prefixed puts prefix ("[i]") before the field of a *FieldError.
func prefixFieldError(prefix string, err error) error {
	var fe *FieldError
	if prefix == "" || !errors.As(err, &fe) {
		return err
	}
	return &FieldError{Field: prefix + "." + fe.Field, Problem: fe.Problem}
}

// list calls each for every element of the list that starts with tok.
func (r *tokenReader) list(field string, tok json.Token, what string, each func(i int, tok json.Token) error) error {
	if tok != json.Delim('[') {
		return fieldErr(field, "must be a list of %s, got %s", what, describeToken(tok))
	}
	for i := 0; r.dec.More(); i++ {
		if i == maxListLen {
			return fieldErr(field, "has more than %d entries", maxListLen)
		}
		tok, err := r.next()
		if err != nil {
			return err
		}
		if err := each(i, tok); err != nil {
			return err
		}
	}
	_, err := r.next() // ']'
	return err
}

func jsonIndex(field string, i int) string { return field + "[" + strconv.Itoa(i) + "]" }

func (r *tokenReader) uintList(field string, tok json.Token) ([]uint64, error) {
	var vs []uint64
	err := r.list(field, tok, "integers", func(i int, tok json.Token) error {
		v, ok := tokenUint(tok, math.MaxUint64)
		if !ok {
			return tokenUintError(jsonIndex(field, i), tok, math.MaxUint64)
		}
		vs = append(vs, v)
		return nil
	})
	return vs, err
}

func (r *tokenReader) boolList(field string, tok json.Token) ([]bool, error) {
	var vs []bool
	err := r.list(field, tok, "true/false values", func(i int, tok json.Token) error {
		v, err := tokenBoolField(jsonIndex(field, i), tok)
		vs = append(vs, v)
		return err
	})
	return vs, err
}

// commitBlocks reads null (no commits) or a list of blocks with null for
// NoCommit. An empty list stays distinct from null.
func (r *tokenReader) commitBlocks(field string, tok json.Token) ([]uint64, error) {
	if tok == nil {
		return nil, nil
	}
	vs := []uint64{}
	err := r.list(field, tok, "blocks or nulls", func(i int, tok json.Token) error {
		if tok == nil {
			vs = append(vs, NoCommit)
			return nil
		}
		v, ok := tokenUint(tok, math.MaxUint64)
		if !ok {
			return fieldErr(jsonIndex(field, i), "must be a block number in [0, %d] or null, got %s", uint64(math.MaxUint64), describeToken(tok))
		}
		vs = append(vs, v)
		return nil
	})
	return vs, err
}

// pair reads a list of exactly two u16 values.
func (r *tokenReader) pair(field string, tok json.Token, shape string) (a, b uint16, err error) {
	var got [2]uint16
	n := 0
	err = r.list(field, tok, "two integers "+shape, func(i int, tok json.Token) error {
		if i >= 2 {
			return fieldErr(field, "must have exactly 2 entries %s, got more", shape)
		}
		v, err := tokenU16Field(jsonIndex(field, i), tok)
		got[i] = v
		n++
		return err
	})
	if err == nil && n != 2 {
		err = fieldErr(field, "must have exactly 2 entries %s, got %d", shape, n)
	}
	return got[0], got[1], err
}

// matrix reads sparse rows: a list of rows, each a list of [uid, value] pairs.
func (r *tokenReader) matrix(field string, tok json.Token) ([][]Entry, error) {
	var rows [][]Entry
	err := r.list(field, tok, "rows", func(i int, tok json.Token) error {
		rowField := jsonIndex(field, i)
		var row []Entry
		err := r.list(rowField, tok, "[uid, value] pairs", func(k int, tok json.Token) error {
			uid, v, err := r.pair(jsonIndex(rowField, k), tok, "[uid, value]")
			row = append(row, Entry{UID: uid, Value: v})
			return err
		})
		rows = append(rows, row)
		return err
	})
	return rows, err
}

// parseUint returns the value of an integer token in [0, max].
func tokenUint(tok json.Token, max uint64) (uint64, bool) {
	num, ok := tok.(json.Number)
	if !ok {
		return 0, false
	}
	v, err := strconv.ParseUint(string(num), 10, 64) // rejects "-1", "1.5", "1e3"
	return v, err == nil && v <= max
}

func tokenUintError(field string, tok json.Token, max uint64) error {
	return fieldErr(field, "must be an integer in [0, %d], got %s", max, describeToken(tok))
}

func tokenUintField(field string, tok json.Token, max uint64) (uint64, error) {
	v, ok := tokenUint(tok, max)
	if !ok {
		return 0, tokenUintError(field, tok, max)
	}
	return v, nil
}

func tokenU16Field(field string, tok json.Token) (uint16, error) {
	v, err := tokenUintField(field, tok, math.MaxUint16)
	return uint16(v), err
}

func tokenI16Field(field string, tok json.Token) (int16, error) {
	if num, ok := tok.(json.Number); ok {
		if v, err := strconv.ParseInt(string(num), 10, 16); err == nil {
			return int16(v), nil
		}
	}
	return 0, fieldErr(field, "must be an integer in [%d, %d], got %s", math.MinInt16, math.MaxInt16, describeToken(tok))
}

func tokenBoolField(field string, tok json.Token) (bool, error) {
	v, ok := tok.(bool)
	if !ok {
		return false, fieldErr(field, "must be true or false, got %s", describeToken(tok))
	}
	return v, nil
}

// variantValue accepts the vectors' descriptive names, such as
// "sparse (epoch_mechanism / Pallet::epoch)", by their first word.
func tokenVariantField(field string, tok json.Token) (Variant, error) {
	if s, ok := tok.(string); ok {
		switch {
		case strings.HasPrefix(s, "sparse"):
			return Sparse, nil
		case strings.HasPrefix(s, "dense"):
			return Dense, nil
		}
	}
	return 0, fieldErr(field, `must be a string starting with "sparse" or "dense", got %s`, describeToken(tok))
}

// describe names a token for an error message, on one line and briefly.
func describeToken(tok json.Token) string {
	switch v := tok.(type) {
	case nil:
		return "null"
	case bool:
		return strconv.FormatBool(v)
	case json.Number:
		return clipString(string(v))
	case string:
		return "the string " + strconv.Quote(clipString(v))
	case json.Delim:
		switch v {
		case '{':
			return "an object"
		case '[':
			return "a list"
		}
		return "the end of a list or object"
	}
	return fmt.Sprintf("%v", tok)
}

// clip shortens s to at most 40 bytes (plus an ellipsis).
func clipString(s string) string {
	const limit = 40
	if len(s) <= limit {
		return s
	}
	return s[:limit] + "..."
}

// quoteKey returns a field name as is when it is a plain identifier, and
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
