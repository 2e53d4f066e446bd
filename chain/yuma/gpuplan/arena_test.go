package gpuplan

import (
	"errors"
	"slices"
	"testing"

	"taobox/chain/yuma"
)

// Every shape Pack makes is one Shape.Layout accepts, with the same
// layout; shapes no Pack makes are refused.
func TestShapeLayout(t *testing.T) {
	for seed := range uint64(20) {
		ins := RandomBatch(seed, 1+int(seed%5))
		dev, _ := Split(ins)
		for _, chunk := range Chunks(ins, dev) {
			b := Pack(ins, chunk, false)
			l, err := b.L.Shape().Layout()
			if err != nil {
				t.Fatalf("seed %d: %v", seed, err)
			}
			if *l != *b.L {
				t.Fatalf("seed %d: layout from the shape differs", seed)
			}
		}
	}
	good := Shape{S: 2, U: 10, NW: 30, NB: 20, Cells: 50, BondCap: 60}
	if _, err := good.Layout(); err != nil {
		t.Fatal(err)
	}
	for name, mut := range map[string]func(*Shape){
		"no subnets":                func(s *Shape) { s.S = 0 },
		"fewer uids":                func(s *Shape) { s.U = 1 },
		"too many uids":             func(s *Shape) { s.S, s.U = 1, 65536 },
		"cells below U":             func(s *Shape) { s.Cells = 9 },
		"cells over max":            func(s *Shape) { s.Cells = MaxCells + 1 },
		"negative NW":               func(s *Shape) { s.NW = -1 },
		"NW over int32":             func(s *Shape) { s.NW = 1 << 31 },
		"NB over int32":             func(s *Shape) { s.NB = 1 << 31 },
		"bond cap over":             func(s *Shape) { s.BondCap = s.Cells + s.NW + 1 },
		"negative bonds":            func(s *Shape) { s.BondCap = -1 },
		"negative uids":             func(s *Shape) { s.U = -5 },
		"negative cells":            func(s *Shape) { s.Cells = -1 },
		"negative NB":               func(s *Shape) { s.NB = -1 },
		"subnets over U":            func(s *Shape) { s.S = 11 },
		"overflowing cap":           func(s *Shape) { s.BondCap = 1 << 62 },
		"cells over one big subnet": func(s *Shape) { s.Cells = 101 },
		"cells under U²/S":          func(s *Shape) { s.Cells = 49 },
		"cap under cells":           func(s *Shape) { s.BondCap = 49 },
		"n over 5792":               func(s *Shape) { s.S, s.U, s.Cells = 1, 5793, MaxCells },
		"1 uid, all cells":          func(s *Shape) { *s = Shape{S: 1, U: 1, Cells: MaxCells, BondCap: MaxCells} },
		"2 subnets of 1, 4 cells":   func(s *Shape) { *s = Shape{S: 2, U: 2, Cells: 4, BondCap: 4} },
		"no bond room":              func(s *Shape) { *s = Shape{S: 1, U: 1, Cells: 1} },
	} {
		sh := good
		mut(&sh)
		if _, err := sh.Layout(); err == nil {
			t.Errorf("%s: %+v accepted", name, sh)
		}
	}
}

// ranBatch packs the first chunk of a random batch and runs it as the
// runner does: the inputs, the chunk, the packed batch and the kernels'
// output prefix and bond entries.
func ranBatch(t *testing.T) ([]yuma.Input, []int, *Batch, []int64, []uint32) {
	t.Helper()
	ins := RandomBatch(3, 4)
	dev, _ := Split(ins)
	chunk := Chunks(ins, dev)[0]
	b := Pack(ins, chunk, false)
	prefix, bonds, err := NewEngine().runArena(b)
	if err != nil {
		t.Fatal(err)
	}
	return ins, chunk, b, prefix, bonds
}

// SetOutputs refuses every count or offset Unpack would slice out of
// range, and takes the kernels' own outputs.
func TestSetOutputsChecks(t *testing.T) {
	_, _, b, prefix, bonds := ranBatch(t)
	if len(bonds) == 0 {
		t.Fatal("the batch writes no bonds: pick another seed")
	}
	l := b.L
	at := func(slot int) int64 { return l.sec[slot].off }
	state := func(s, f int) int64 { return at(DSState) + int64(s*StateFields+f) }
	u0, n := b.subs[0].u0, int64(b.subs[0].in.N)
	for name, mut := range map[string]func(p []int64, bo []uint32) ([]int64, []uint32){
		"total over cap": func(p []int64, bo []uint32) ([]int64, []uint32) { p[at(DTotal)] = l.BondCap + 1; return p, bo },
		"total negative": func(p []int64, bo []uint32) ([]int64, []uint32) { p[at(DTotal)] = -1; return p, bo },
		"fewer entries":  func(p []int64, bo []uint32) ([]int64, []uint32) { return p, bo[:len(bo)-1] },
		"short prefix":   func(p []int64, bo []uint32) ([]int64, []uint32) { return p[:len(p)-1], bo },
		"base past total": func(p []int64, bo []uint32) ([]int64, []uint32) {
			p[state(0, SSBondBase)] = int64(len(bo)) + 1
			return p, bo
		},
		"negative base": func(p []int64, bo []uint32) ([]int64, []uint32) { p[state(1, SSBondBase)] = -1; return p, bo },
		"count past total": func(p []int64, bo []uint32) ([]int64, []uint32) {
			p[state(0, SSBondN)] = int64(len(bo)) + 1
			return p, bo
		},
		"count overflows": func(p []int64, bo []uint32) ([]int64, []uint32) {
			p[state(0, SSBondBase)], p[state(0, SSBondN)] = 1, 1<<62
			return p, bo
		},
		"negative count": func(p []int64, bo []uint32) ([]int64, []uint32) { p[state(0, SSBondN)] = -1; return p, bo },
		"row offset past": func(p []int64, bo []uint32) ([]int64, []uint32) {
			p[at(DRowOff)+u0+n-1] = p[state(0, SSBondN)] + 1
			return p, bo
		},
		"row offset back": func(p []int64, bo []uint32) ([]int64, []uint32) { p[at(DRowOff)+u0+1] = -1; return p, bo },
		"row offsets swap": func(p []int64, bo []uint32) ([]int64, []uint32) {
			p[at(DRowOff)+u0] = p[at(DRowOff)+u0+n-1] + 1
			return p, bo
		},
		"negative first row": func(p []int64, bo []uint32) ([]int64, []uint32) { p[at(DRowOff)+u0] = -3; return p, bo },
	} {
		p, bo := mut(slices.Clone(prefix), slices.Clone(bonds))
		if err := b.SetOutputs(p, bo); !errors.Is(err, ErrOutputs) {
			t.Errorf("%s: %v, want ErrOutputs", name, err)
		}
	}
	if err := b.SetOutputs(prefix, bonds); err != nil {
		t.Fatal(err)
	}
}

// What SetOutputs checked cannot change under Unpack: a runner writing its
// region after answering moves only values, never a slice bound.
func TestSetOutputsOwnsOffsets(t *testing.T) {
	ins, chunk, b, prefix, bonds := ranBatch(t)
	want := make([]yuma.Output, len(ins))
	ref := Pack(ins, chunk, false)
	if err := ref.SetOutputs(slices.Clone(prefix), bonds); err != nil {
		t.Fatal(err)
	}
	ref.Unpack(chunk, want)
	if err := b.SetOutputs(prefix, bonds); err != nil {
		t.Fatal(err)
	}
	l := b.L
	for _, s := range []int{DSState, DRowOff} { // after the check: garbage offsets
		sec := l.sec[s]
		for i := sec.off; i < sec.off+sec.words; i++ {
			prefix[i] = 1 << 40
		}
	}
	got := make([]yuma.Output, len(ins))
	b.Unpack(chunk, got)
	for _, i := range chunk {
		if d := Diff(&got[i], &want[i]); d != "" {
			t.Fatalf("input %d: %s", i, d)
		}
	}
}
