package yuma_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"taobox/chain/yuma"
	"taobox/internal/vectors"
)

// loadJSONVectorCases returns the whole-epoch vectors.
func loadJSONVectorCases(t testing.TB) []vectors.Epoch {
	t.Helper()
	cases, err := vectors.Epochs()
	if err != nil {
		t.Fatal(err)
	}
	return cases
}

// genericJSON decodes data into maps, lists and json.Numbers.
func genericJSON(t testing.TB, data []byte) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("decode %.80s: %v", data, err)
	}
	return v
}

func TestJSONInputVectorsRoundTrip(t *testing.T) {
	for _, c := range loadJSONVectorCases(t) {
		in, err := yuma.DecodeInput(c.Input)
		if err != nil {
			t.Fatalf("%s: DecodeInput: %v", c.Name(), err)
		}
		enc, err := yuma.EncodeInput(in)
		if err != nil {
			t.Fatalf("%s: EncodeInput: %v", c.Name(), err)
		}
		again, err := yuma.DecodeInput(enc)
		if err != nil {
			t.Fatalf("%s: DecodeInput(EncodeInput): %v\n%s", c.Name(), err, enc)
		}
		if !reflect.DeepEqual(in, again) {
			t.Fatalf("%s: round trip changed the input:\n got %+v\nwant %+v", c.Name(), again, in)
		}

		// The encoding says what the vector says, except that the cutoff
		// is given in blocks only and the variant by its first word.
		want := genericJSON(t, c.Input).(map[string]any)
		delete(want, "activity_cutoff_factor_milli")
		want["variant"] = in.Variant.String()
		if got := genericJSON(t, enc); !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: encoding differs from the vector:\n got %s\nwant %s", c.Name(), enc, c.Input)
		}
	}
}

func TestJSONDecodeInputFields(t *testing.T) {
	c := loadJSONVectorCases(t)[0]
	in, err := yuma.DecodeInput(c.Input)
	if err != nil {
		t.Fatal(err)
	}
	// test_outdated_weights, epoch at block 2.
	if in.N != 4 || in.CurrentBlock != 2 || in.ActivityCutoffBlocks != 1 || in.OwnerUID != -1 ||
		in.Kappa != 32767 || in.AlphaLow != 45875 || in.AlphaHigh != 58982 || in.AlphaSteepness != 1000 ||
		in.Variant != yuma.Sparse || in.CommitBlocks != nil || in.RaoEmission != 1_000_000_000 {
		t.Fatalf("decoded %+v", in)
	}
	wantW := [][]yuma.Entry{{{2, 65535}, {3, 32768}}, {{2, 65535}, {3, 32768}}, {{2, 65535}}, {{3, 65535}}}
	if !reflect.DeepEqual(in.Weights, wantW) {
		t.Fatalf("weights %v, want %v", in.Weights, wantW)
	}
}

// validInputJSON is a small valid input as a generic map, for tests to break.
func validInputJSON(t *testing.T) map[string]any {
	in := &yuma.Input{
		N: 3, CurrentBlock: 100, Tempo: 10, ActivityCutoffBlocks: 50,
		LastUpdate: []uint64{99, 99, 1}, BlockAtRegistration: []uint64{1, 1, 1},
		AlphaStake: []uint64{1e12, 1e12, 0}, TaoStake: []uint64{0, 5, 0},
		TaoWeight: 971_718_665_099_567_868, OwnerUID: -1,
		ValidatorPermit: []bool{true, true, false}, MaxAllowedValidators: 2,
		Kappa: 32767, BondsPenalty: 65535, BondsMovingAverage: 900_000,
		Yuma3: true, AlphaLow: 45875, AlphaHigh: 58982, AlphaSteepness: 1000,
		Weights:     [][]yuma.Entry{{{2, 65535}}, {{1, 0}, {2, 65535}}, nil},
		Bonds:       [][]yuma.Entry{{{2, 100}}, nil, nil},
		RaoEmission: 1e9,
	}
	data, err := yuma.EncodeInput(in)
	if err != nil {
		t.Fatal(err)
	}
	return genericJSON(t, data).(map[string]any)
}

func TestJSONDecodeInputErrors(t *testing.T) {
	num := func(s string) json.Number { return json.Number(s) }
	set := func(key string, v any) func(m map[string]any) {
		return func(m map[string]any) { m[key] = v }
	}
	tests := []struct {
		name    string
		edit    func(m map[string]any) // applied to validInputJSON
		raw     string                 // used instead when set
		field   string
		problem string
	}{
		{name: "syntax", raw: `{"n": 3,`, field: "input", problem: "offset 8"},
		{name: "syntax trailing data", raw: `{} {}`, field: "input", problem: "offset"},
		{name: "empty", raw: ``, field: "input", problem: "not valid JSON"},
		{name: "not an object", raw: `[1]`, field: "input", problem: "must be a JSON object, got a list"},
		{name: "unknown field", edit: set("kapa", num("1")), field: "kapa", problem: "not a field"},
		{name: "odd unknown field", edit: set("a\nb", num("1")), field: `"a\nb"`, problem: "not a field"},
		{name: "duplicate field", raw: `{"n":1,"n":1}`, field: "n", problem: "twice"},
		{name: "missing field", edit: func(m map[string]any) { delete(m, "kappa") }, field: "kappa", problem: "missing"},
		{name: "missing cutoff", edit: func(m map[string]any) { delete(m, "activity_cutoff_blocks") }, field: "activity_cutoff_blocks", problem: "missing"},
		{name: "cutoff disagrees", edit: set("activity_cutoff_factor_milli", num("13889")), field: "activity_cutoff_blocks", problem: "gives 138"},
		{name: "negative", edit: set("current_block", num("-1")), field: "current_block", problem: "must be an integer in [0, 18446744073709551615], got -1"},
		{name: "float", edit: set("tempo", num("1.5")), field: "tempo", problem: "got 1.5"},
		{name: "integral float", edit: set("tempo", num("1.0")), field: "tempo", problem: "got 1.0"},
		{name: "exponent", edit: set("tempo", num("1e3")), field: "tempo", problem: "got 1e3"},
		{name: "u64 overflow", edit: set("rao_emission", num("18446744073709551616")), field: "rao_emission", problem: "got 18446744073709551616"},
		{name: "u16 overflow", edit: set("kappa", num("65536")), field: "kappa", problem: "[0, 65535], got 65536"},
		{name: "i16 underflow", edit: set("alpha_sigmoid_steepness", num("-32769")), field: "alpha_sigmoid_steepness", problem: "[-32768, 32767]"},
		{name: "string for number", edit: set("n", "3"), field: "n", problem: `got the string "3"`},
		{name: "n too large", edit: set("n", num("65536")), field: "n", problem: "[0, 65535]"},
		{name: "bool as number", edit: set("yuma3", num("1")), field: "yuma3", problem: "true or false, got 1"},
		{name: "list element", edit: set("last_update", []any{num("1"), "x", num("2")}), field: "last_update[1]", problem: `got the string "x"`},
		{name: "not a list", edit: set("alpha_stake", num("5")), field: "alpha_stake", problem: "must be a list"},
		{name: "permit element", edit: set("validator_permit", []any{true, nil}), field: "validator_permit[1]", problem: "got null"},
		{name: "alpha_values length", edit: set("alpha_values", []any{num("1"), num("2"), num("3")}), field: "alpha_values", problem: "exactly 2"},
		{name: "alpha_values short", edit: set("alpha_values", []any{num("1")}), field: "alpha_values", problem: "got 1"},
		{name: "alpha_values range", edit: set("alpha_values", []any{num("1"), num("70000")}), field: "alpha_values[1]", problem: "[0, 65535]"},
		{name: "owner negative", edit: set("owner_uid", num("-1")), field: "owner_uid", problem: "or null"},
		{name: "owner too large", edit: set("owner_uid", num("65535")), field: "owner_uid", problem: "[0, 65534]"},
		{name: "variant", edit: set("variant", "spars"), field: "variant", problem: `"spars"`},
		{name: "variant type", edit: set("variant", num("0")), field: "variant", problem: "got 0"},
		{name: "commit block", edit: set("commit_blocks", []any{nil, num("-3"), nil}), field: "commit_blocks[1]", problem: "or null"},
		{name: "commit_blocks length", edit: set("commit_blocks", []any{nil}), field: "commit_blocks", problem: "has 1 entries, want n = 3"},
		{name: "row not a list", edit: set("weights", []any{[]any{}, num("7"), []any{}}), field: "weights[1]", problem: "list of [uid, value] pairs"},
		{name: "pair not a list", edit: set("weights", []any{[]any{num("1")}, []any{}, []any{}}), field: "weights[0][0]", problem: "two integers [uid, value]"},
		{name: "pair too long", edit: set("bonds", []any{[]any{}, []any{[]any{num("1"), num("2"), num("3")}}, []any{}}), field: "bonds[1][0]", problem: "exactly 2"},
		{name: "pair value", edit: set("weights", []any{[]any{[]any{num("1"), num("65536")}}, []any{}, []any{}}), field: "weights[0][0][1]", problem: "[0, 65535]"},
		{name: "uid beyond n", edit: set("weights", []any{[]any{}, []any{[]any{num("0"), num("1")}, []any{num("3"), num("1")}}, []any{}}), field: "weights[1][1]", problem: "names uid 3, but n = 3"},
		{name: "length mismatch", edit: set("tao_stake", []any{num("1")}), field: "tao_stake", problem: "has 1 entries, want n = 3"},
		{name: "too many rows", edit: set("bonds", []any{[]any{}, []any{}, []any{}, []any{}}), field: "bonds", problem: "has 4 entries, want n = 3"},
		{name: "permits longer than n", edit: set("validator_permit", []any{true, true, true, true}), field: "validator_permit", problem: "more than n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := []byte(tt.raw)
			if tt.edit != nil {
				m := validInputJSON(t)
				tt.edit(m)
				var err error
				if data, err = json.Marshal(m); err != nil {
					t.Fatal(err)
				}
			}
			in, err := yuma.DecodeInput(data)
			var fe *yuma.FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("DecodeInput = %+v, %v; want a *FieldError", in, err)
			}
			if fe.Field != tt.field || !strings.Contains(fe.Problem, tt.problem) {
				t.Fatalf("error %q; want field %q with a problem containing %q", err, tt.field, tt.problem)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %q spans lines", err)
			}
		})
	}
}

func TestJSONDecodeInputOptionalFields(t *testing.T) {
	decode := func(m map[string]any) *yuma.Input {
		t.Helper()
		data, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		in, err := yuma.DecodeInput(data)
		if err != nil {
			t.Fatalf("DecodeInput: %v", err)
		}
		return in
	}

	m := validInputJSON(t)
	delete(m, "commit_blocks")
	if in := decode(m); in.CommitBlocks != nil {
		t.Fatalf("absent commit_blocks gave %v", in.CommitBlocks)
	}
	m["commit_blocks"] = []any{nil, json.Number("7"), json.Number("18446744073709551615")}
	if in := decode(m); !reflect.DeepEqual(in.CommitBlocks, []uint64{yuma.NoCommit, 7, yuma.NoCommit}) {
		t.Fatalf("commit_blocks decoded as %v", in.CommitBlocks)
	}

	// Only the factor: blocks = max(factor*tempo/1000, 1), saturating.
	for _, c := range []struct {
		factor, tempo string
		blocks        uint64
	}{
		{"13889", "360", 5000},
		{"13889", "0", 1},
		{"1", "10", 1},
		{"18446744073709551615", "2", 18446744073709551},
	} {
		m := validInputJSON(t)
		delete(m, "activity_cutoff_blocks")
		m["activity_cutoff_factor_milli"] = json.Number(c.factor)
		m["tempo"] = json.Number(c.tempo)
		if in := decode(m); in.ActivityCutoffBlocks != c.blocks {
			t.Errorf("factor %s tempo %s: cutoff %d, want %d", c.factor, c.tempo, in.ActivityCutoffBlocks, c.blocks)
		}
		m["activity_cutoff_blocks"] = c.blocks
		decode(m) // both given and agreeing
	}

	// Extremes are exact.
	m = validInputJSON(t)
	m["rao_emission"] = json.Number("18446744073709551615")
	m["alpha_sigmoid_steepness"] = json.Number("-32768")
	if in := decode(m); in.RaoEmission != 1<<64-1 || in.AlphaSteepness != -32768 {
		t.Fatalf("extremes decoded as %d, %d", in.RaoEmission, in.AlphaSteepness)
	}
}

func TestJSONDecodeInputEscapesAndSpace(t *testing.T) {
	plain, err := json.Marshal(validInputJSON(t))
	if err != nil {
		t.Fatal(err)
	}
	want, err := yuma.DecodeInput(plain)
	if err != nil {
		t.Fatal(err)
	}
	// Escaped keys and strings, and white space everywhere, read the same.
	odd := bytes.ReplaceAll(plain, []byte(`"kappa"`), []byte(`"\u006bappa"`))
	odd = bytes.ReplaceAll(odd, []byte(`"sparse"`), []byte(`"spars\u0065 (epoch_mechanism)"`))
	odd = bytes.ReplaceAll(odd, []byte(`,`), []byte(" ,\n\t"))
	odd = bytes.ReplaceAll(odd, []byte(`:`), []byte("\r: "))
	got, err := yuma.DecodeInput(odd)
	if err != nil {
		t.Fatalf("%v in %s", err, odd)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("escapes and white space changed the input:\n got %+v\nwant %+v", got, want)
	}
}

func TestJSONDecodeInputSizeLimit(t *testing.T) {
	data := make([]byte, yuma.MaxJSONSize+1) // untouched pages: no real memory
	_, err := yuma.DecodeInput(data)
	var fe *yuma.FieldError
	if !errors.As(err, &fe) || fe.Field != "input" || !strings.Contains(fe.Problem, "256 MiB") {
		t.Fatalf("oversized input: %v", err)
	}
}

func TestJSONDecodeInputs(t *testing.T) {
	cases := loadJSONVectorCases(t)
	var doc bytes.Buffer
	doc.WriteString("[\n")
	for i, c := range cases[:3] {
		if i > 0 {
			doc.WriteString(",\n")
		}
		doc.Write(c.Input)
	}
	doc.WriteString("]")
	ins, err := yuma.DecodeInputs(doc.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if len(ins) != 3 {
		t.Fatalf("got %d inputs, want 3", len(ins))
	}
	for i, c := range cases[:3] {
		one, _ := yuma.DecodeInput(c.Input)
		if !reflect.DeepEqual(&ins[i], one) {
			t.Fatalf("input %d differs from DecodeInput", i)
		}
	}

	if ins, err := yuma.DecodeInputs([]byte(" [ ] ")); err != nil || ins == nil || len(ins) != 0 {
		t.Fatalf("empty list: %v, %v", ins, err)
	}

	bad := validInputJSON(t)
	bad["kappa"] = json.Number("-1")
	badJSON, _ := json.Marshal(bad)
	for _, tt := range []struct {
		doc, field string
	}{
		{"[" + string(cases[0].Input) + "," + string(badJSON) + "]", "[1].kappa"},
		{"[" + string(cases[0].Input) + ",7]", "[1]"},
		{`[{"n":0,"bogus":1}]`, "[0].bogus"},
		{`[{"n":0}]`, "[0].current_block"},
		{`{"n":0}`, "input"},
		{`[`, "input"},
	} {
		_, err := yuma.DecodeInputs([]byte(tt.doc))
		var fe *yuma.FieldError
		if !errors.As(err, &fe) || fe.Field != tt.field {
			t.Errorf("DecodeInputs(%.40q...) error %v; want field %q", tt.doc, err, tt.field)
		}
	}
}

func TestJSONEncodeInputInvalid(t *testing.T) {
	if _, err := yuma.EncodeInput(&yuma.Input{N: 2}); err == nil {
		t.Fatal("EncodeInput accepted an input with missing per-uid slices")
	}
	if _, err := yuma.EncodeInput(&yuma.Input{OwnerUID: -2}); err == nil {
		t.Fatal("EncodeInput accepted owner uid -2")
	}
}

// pythonOutputs is the part of python_port_outputs that EncodeOutput writes.
type pythonOutputs struct {
	StakeWeight         []uint16      `json:"stake_weight_u16"`
	Consensus           []uint16      `json:"consensus_u16"`
	Incentive           []uint16      `json:"incentive_u16"`
	Dividends           []uint16      `json:"dividends_u16"`
	ValidatorTrust      []uint16      `json:"validator_trust_u16"`
	ServerEmission      []uint64      `json:"server_emission"`
	ValidatorEmission   []uint64      `json:"validator_emission"`
	Emission            []uint64      `json:"emission"`
	NewValidatorPermits []bool        `json:"new_validator_permits"`
	Inactive            []bool        `json:"inactive"`
	NewBonds            [][][2]uint16 `json:"new_bonds_u16"`
}

func TestJSONEncodeOutputMatchesVectors(t *testing.T) {
	for _, c := range loadJSONVectorCases(t) {
		var py pythonOutputs
		if err := json.Unmarshal(c.Outputs, &py); err != nil {
			t.Fatalf("%s: %v", c.Name(), err)
		}
		out := &yuma.Output{
			StakeWeight: py.StakeWeight, Consensus: py.Consensus, Incentive: py.Incentive,
			Dividends: py.Dividends, ValidatorTrust: py.ValidatorTrust,
			ServerEmission: py.ServerEmission, ValidatorEmission: py.ValidatorEmission, Emission: py.Emission,
			NewValidatorPermits: py.NewValidatorPermits, Inactive: py.Inactive,
		}
		for _, row := range py.NewBonds {
			var r []yuma.Entry
			for _, p := range row {
				r = append(r, yuma.Entry{UID: p[0], Value: p[1]})
			}
			out.NewBonds = append(out.NewBonds, r)
		}
		enc, err := yuma.EncodeOutput(out)
		if err != nil {
			t.Fatal(err)
		}
		want := genericJSON(t, c.Outputs).(map[string]any)
		delete(want, "last_tempo")
		delete(want, "raw_I32F32")
		if got := genericJSON(t, enc); !reflect.DeepEqual(got, want) {
			t.Fatalf("%s:\n got %s\nwant %s", c.Name(), enc, c.Outputs)
		}
	}
}

func TestJSONEncodeOutputExact(t *testing.T) {
	out := &yuma.Output{
		StakeWeight:         []uint16{1, 65535},
		Emission:            []uint64{0, 1<<64 - 1},
		NewValidatorPermits: []bool{true, false},
		NewBonds:            [][]yuma.Entry{nil, {{0, 7}, {1, 65535}}},
	}
	got, err := yuma.EncodeOutput(out)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"stake_weight_u16":[1,65535],"consensus_u16":[],"incentive_u16":[],"dividends_u16":[],` +
		`"validator_trust_u16":[],"server_emission":[],"validator_emission":[],"emission":[0,18446744073709551615],` +
		`"new_validator_permits":[true,false],"inactive":[],"new_bonds_u16":[[],[[0,7],[1,65535]]]}`
	if string(got) != want {
		t.Fatalf("EncodeOutput:\n got %s\nwant %s", got, want)
	}
	if _, err := yuma.EncodeOutput(nil); err == nil {
		t.Fatal("EncodeOutput(nil) gave no error")
	}
}

// FuzzDecodeInput: decoding never panics, every error is a one-line
// *FieldError, and whatever decodes survives encode → decode unchanged.
func FuzzDecodeInput(f *testing.F) {
	for _, c := range loadJSONVectorCases(f) {
		f.Add([]byte(c.Input))
	}
	small := yuma.Synthetic(yuma.SynthConfig{N: 3, Validators: 1, Seed: 1, WeightsPerValidator: 2})
	if data, err := yuma.EncodeInput(&small); err == nil {
		f.Add(data)
	}
	for _, s := range []string{``, `{}`, `[]`, `null`, `{"n":0}`, `{"n":1e3}`, `{"weights":[[[0,1]]]}`, `{"\u006e": -0}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		in, err := yuma.DecodeInput(data)
		if err != nil {
			var fe *yuma.FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v is a %T, not a *FieldError", err, err)
			}
			if strings.ContainsAny(err.Error(), "\r\n") {
				t.Fatalf("error %q spans lines", err)
			}
			return
		}
		enc, err := yuma.EncodeInput(in)
		if err != nil {
			t.Fatalf("EncodeInput of a decoded input: %v", err)
		}
		again, err := yuma.DecodeInput(enc)
		if err != nil {
			t.Fatalf("DecodeInput(EncodeInput(in)): %v\n%s", err, enc)
		}
		if !reflect.DeepEqual(in, again) {
			t.Fatalf("round trip changed the input\n in: %+v\nout: %+v", in, again)
		}

		// Differential check against encoding/json: what was accepted
		// says what the encoding says, up to the documented defaults.
		want, ok := genericJSON(t, data).(map[string]any)
		if !ok {
			t.Fatalf("accepted a document that is not an object: %q", data)
		}
		delete(want, "activity_cutoff_factor_milli")
		want["activity_cutoff_blocks"] = json.Number(strconv.FormatUint(in.ActivityCutoffBlocks, 10))
		want["variant"] = in.Variant.String()
		if _, ok := want["commit_blocks"]; !ok {
			want["commit_blocks"] = nil
		}
		if got := genericJSON(t, enc); !reflect.DeepEqual(canonicalNumbers(got), canonicalNumbers(want)) {
			t.Fatalf("encoding/json reads the input differently:\n got %s\nfrom %q", enc, data)
		}
	})
}

// canonicalNumbers rewrites integer json.Numbers in canonical form ("-0"
// becomes "0") so that equal values compare equal.
func canonicalNumbers(v any) any {
	switch v := v.(type) {
	case json.Number:
		if i, err := strconv.ParseInt(string(v), 10, 64); err == nil {
			return json.Number(strconv.FormatInt(i, 10))
		}
		return v
	case []any:
		for i := range v {
			v[i] = canonicalNumbers(v[i])
		}
	case map[string]any:
		for k := range v {
			v[k] = canonicalNumbers(v[k])
		}
	}
	return v
}
