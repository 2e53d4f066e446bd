package runner

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"testing"

	"taobox/chain/yuma"
	"taobox/model"
)

func FuzzReadFrame(f *testing.F) {
	f.Add(AppendFrame(nil, Frame{Kind: KindRequest, Op: OpHealth, ID: 1}))
	f.Add(AppendFrame(nil, Frame{Kind: KindError, Op: OpYumaEpochs, ID: 7, Payload: []byte("boom")}))
	f.Add([]byte("TR\x01\x01"))
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := ReadFrame(bytes.NewReader(b), 1<<16)
		if err != nil {
			if !errors.Is(err, ErrBadFrame) && !errors.Is(err, ErrFrameTooLarge) && err != io.EOF && err != io.ErrUnexpectedEOF {
				t.Fatalf("unexpected error class: %v", err)
			}
			return
		}
		re := AppendFrame(nil, fr)
		if !bytes.Equal(re, b[:len(re)]) {
			t.Fatalf("re-encoding differs")
		}
	})
}

// tinyInput is a small valid input: small seeds keep the fuzzer's
// minimisation fast.
func tinyInput() yuma.Input {
	return yuma.Input{
		N: 3, CurrentBlock: 100, Tempo: 10, ActivityCutoffBlocks: 50, OwnerUID: 0,
		LastUpdate: []uint64{90, 95, 99}, BlockAtRegistration: []uint64{1, 2, 3},
		AlphaStake: []uint64{1e9, 2e9, 0}, TaoStake: []uint64{0, 5, 0}, TaoWeight: 1 << 62,
		ValidatorPermit: []bool{true, true}, MaxAllowedValidators: 2, Kappa: 32767,
		BondsMovingAverage: 900000, Yuma3: true, LiquidAlpha: true, AlphaLow: 45875, AlphaHigh: 58982, AlphaSteepness: 1000,
		CommitReveal: true, CommitBlocks: []uint64{yuma.NoCommit, 97, yuma.NoCommit},
		Weights:     [][]yuma.Entry{{{UID: 2, Value: 65535}}, {{UID: 1, Value: 0}, {UID: 2, Value: 9}}, nil},
		Bonds:       [][]yuma.Entry{{{UID: 2, Value: 100}}, {}, nil},
		RaoEmission: 1e9,
	}
}

func FuzzDecodeInputs(f *testing.F) {
	f.Add(EncodeInputs(nil, []yuma.Input{tinyInput()}))
	f.Add(EncodeInputs(nil, []yuma.Input{{OwnerUID: -1}}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		ins, err := DecodeInputs(b)
		if err != nil {
			if !errors.Is(err, ErrBadPayload) {
				t.Fatalf("unexpected error class: %v", err)
			}
			return
		}
		if re := EncodeInputs(nil, ins); !bytes.Equal(re, b) {
			t.Fatalf("re-encoding differs")
		}
		if aliased, err := decodeInputs(b, true); err != nil || !reflect.DeepEqual(aliased, ins) {
			t.Fatalf("in-place decoding differs: %v", err)
		}
		again, err := DecodeInputs(EncodeInputs(nil, ins))
		if err != nil || !reflect.DeepEqual(again, ins) {
			t.Fatalf("round trip: %v", err)
		}
	})
}

func FuzzDecodeOutputs(f *testing.F) {
	f.Add(EncodeOutputs(nil, cpuOutputs(f, []yuma.Input{tinyInput()})))
	f.Add(EncodeOutputs(nil, []yuma.Output{{}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		outs, err := DecodeOutputs(b)
		if err != nil {
			if !errors.Is(err, ErrBadPayload) {
				t.Fatalf("unexpected error class: %v", err)
			}
			return
		}
		if re := EncodeOutputs(nil, outs); !bytes.Equal(re, b) {
			t.Fatalf("re-encoding differs")
		}
	})
}

func FuzzDecodeLogits(f *testing.F) {
	f.Add(EncodeLogits(nil, []float32{1, -2.5, 3e9}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		vs, err := DecodeLogits(b)
		if err != nil {
			if !errors.Is(err, ErrBadPayload) {
				t.Fatalf("unexpected error class: %v", err)
			}
			return
		}
		if re := EncodeLogits(nil, vs); !bytes.Equal(re, b) {
			t.Fatalf("re-encoding differs")
		}
	})
}

func FuzzDecodeGenerate(f *testing.F) {
	f.Add(EncodeGenerate(nil, []int{1, 2, 3}, 8), EncodeGenerated(nil, []int{5, 6}, []float64{-0.5, -1}))
	f.Add([]byte{}, []byte{})
	f.Fuzz(func(t *testing.T, req, resp []byte) {
		if prompt, n, err := DecodeGenerate(req); err == nil {
			if re := EncodeGenerate(nil, prompt, n); !bytes.Equal(re, req) {
				t.Fatalf("request re-encodes differently")
			}
		} else if !errors.Is(err, ErrBadPayload) {
			t.Fatalf("unexpected error class: %v", err)
		}
		if toks, lps, err := DecodeGenerated(resp); err == nil {
			if re := EncodeGenerated(nil, toks, lps); !bytes.Equal(re, resp) {
				t.Fatalf("response re-encodes differently")
			}
		} else if !errors.Is(err, ErrBadPayload) {
			t.Fatalf("unexpected error class: %v", err)
		}
	})
}

func FuzzDecodeScore(f *testing.F) {
	f.Add(EncodeScore(nil, ScoreRequest{IDs: []int{1, 2, 3}, From: 1, Spots: []int{0, 1}, Ranks: true, Margin: 0.5}),
		EncodeScored(nil, Scored{LogProbs: []float64{-0.5, -1}, Ahead: []int{0, 3}, Dists: [][]float64{{-1, -2, -0.5}}, Vocab: 3}))
	f.Add(EncodeScore(nil, ScoreRequest{}), EncodeScored(nil, Scored{}))
	f.Add([]byte{}, []byte{})
	f.Fuzz(func(t *testing.T, req, resp []byte) {
		if r, err := DecodeScore(req); err == nil {
			if re := EncodeScore(nil, r); !bytes.Equal(re, req) {
				t.Fatalf("request re-encodes differently")
			}
		} else if !errors.Is(err, ErrBadPayload) {
			t.Fatalf("unexpected error class: %v", err)
		}
		if s, err := DecodeScored(resp); err == nil {
			if re := EncodeScored(nil, s); !bytes.Equal(re, resp) {
				t.Fatalf("response re-encodes differently")
			}
		} else if !errors.Is(err, ErrBadPayload) {
			t.Fatalf("unexpected error class: %v", err)
		}
	})
}

func FuzzDecodeSample(f *testing.F) {
	f.Add(EncodeSample(nil, SampleRequest{Tokens: []int{1, 2, 3}, Pos: 4, Temperature: 0.8, TopK: 5, TopP: 0.9, Seed: 7, Draws: 2, Alts: 3}),
		EncodeSampled(nil, Sampled{ID: 9, LogProb: -0.25, Draws: 3, Alts: []model.Alt{{ID: 9, LogProb: -0.25}, {ID: 2, LogProb: -2}}}))
	f.Add(EncodeSample(nil, SampleRequest{Tokens: []int{0}}), EncodeSampled(nil, Sampled{}))
	f.Add([]byte{}, []byte{})
	f.Fuzz(func(t *testing.T, req, resp []byte) {
		if r, err := DecodeSample(req); err == nil {
			if re := EncodeSample(nil, r); !bytes.Equal(re, req) {
				t.Fatalf("request re-encodes differently")
			}
		} else if !errors.Is(err, ErrBadPayload) {
			t.Fatalf("unexpected error class: %v", err)
		}
		if s, err := DecodeSampled(resp, nil); err == nil {
			if re := EncodeSampled(nil, s); !bytes.Equal(re, resp) {
				t.Fatalf("response re-encodes differently")
			}
		} else if !errors.Is(err, ErrBadPayload) {
			t.Fatalf("unexpected error class: %v", err)
		}
	})
}
