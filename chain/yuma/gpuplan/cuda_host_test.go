package gpuplan

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unsafe"

	"taobox/chain/yuma"
)

// TestLaunchesMatchKernels: every extern "C" kernel of kernels/yuma.cu is
// launched exactly once, and nothing else is.
func TestLaunchesMatchKernels(t *testing.T) {
	src, err := os.ReadFile("../../../kernels/yuma.cu")
	if err != nil {
		t.Fatal(err)
	}
	var defined []string
	for _, m := range regexp.MustCompile(`extern "C" __global__ void (\w+)\(`).FindAllSubmatch(src, -1) {
		defined = append(defined, string(m[1]))
	}
	launched := map[string]int{}
	for _, l := range Launches {
		launched[l.Name]++
	}
	for _, k := range defined {
		if launched[k] != 1 {
			t.Errorf("kernel %s is launched %d times", k, launched[k])
		}
		delete(launched, k)
	}
	for k := range launched {
		t.Errorf("launch of %s, which yuma.cu does not define", k)
	}
}

// TestCUDAOnHost compiles kernels/yuma.cu itself as C++ (testdata/hostcuda.cc
// supplies the CUDA built-ins, real threads and barriers for the
// block-per-subnet and block-per-row kernels) and runs it on batches,
// requiring the outputs to equal the CPU engine's. The block-per-row kernels
// run with the device's block size and with smaller ones (more steps per row,
// more duplicates within and across steps). It tests the CUDA text on machines without a GPU;
// it is skipped when g++ (C++20) is missing.
func TestCUDAOnHost(t *testing.T) {
	gxx, err := exec.LookPath("g++")
	if err != nil {
		t.Skip("no g++")
	}
	dir := t.TempDir()
	var inc strings.Builder
	for _, l := range Launches {
		fmt.Fprintf(&inc, "LAUNCH(%s, %d)\n", l.Name, l.Grid)
	}
	if err := os.WriteFile(filepath.Join(dir, "launches.inc"), []byte(inc.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	src, _ := filepath.Abs("testdata/hostcuda.cc")
	bin := filepath.Join(dir, "hostcuda")
	if b := os.Getenv("TAOBOX_HOSTCUDA_BIN"); b != "" {
		bin = b // a prebuilt harness (for mutation tests of the .cu)
	} else if out, err := exec.Command(gxx, "-std=c++20", "-O1", "-pthread", "-w", "-I", dir, "-o", bin, src).CombinedOutput(); err != nil {
		t.Skipf("g++ cannot build the host harness (needs C++20 <barrier>): %v\n%s", err, out)
	}
	batches := 30
	if testing.Short() {
		batches = 8
	}
	var all [][]yuma.Input
	for k := range batches {
		all = append(all, RandomBatch(23, k))
	}
	all = append(all, vectorInputs(t))
	rowBlocks := []int{0, RowBlock, 1, 3, 8, 32} // 0: the device's (Layout.RowThreads)
	for k, ins := range all {
		rb := rowBlocks[k%len(rowBlocks)]
		want, err := yuma.NewCPUEngine(1).Epochs(context.Background(), ins)
		if err != nil {
			t.Fatal(err)
		}
		got := make([]yuma.Output, len(ins))
		dev, cpu := Split(ins)
		for _, chunk := range Chunks(ins, dev) {
			b := Pack(ins, chunk, false)
			rbk := rb
			if rbk == 0 {
				rbk = b.L.RowThreads()
			}
			work := runHost(t, bin, dir, b, rbk)
			b.SetWork(work)
			b.Unpack(chunk, got)
		}
		if err := RunCPU(context.Background(), yuma.NewCPUEngine(1), ins, cpu, got); err != nil {
			t.Fatal(err)
		}
		for i := range ins {
			if d := Diff(&got[i], &want[i]); d != "" {
				t.Fatalf("batch %d input %d (n=%d yuma3=%v liquid=%v β=%d, row block %d): yuma.cu on the host: %s",
					k, i, ins[i].N, ins[i].Yuma3, ins[i].LiquidAlpha, ins[i].BondsPenalty, rb, d)
			}
		}
	}
}

// runHost runs the harness on b's input arena and returns the work arena.
// rowBlock is the block size of the block-per-row kernels.
func runHost(t *testing.T, bin, dir string, b *Batch, rowBlock int) []int64 {
	t.Helper()
	l := b.L
	copy(b.In, l.Descriptor(0, 1<<62))
	in := filepath.Join(dir, "in.bin")
	raw := unsafe.Slice((*byte)(unsafe.Pointer(&b.In[0])), len(b.In)*8)
	if err := os.WriteFile(in, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	outPath := filepath.Join(dir, "work.bin")
	cmd := exec.Command(bin, in, fmt.Sprint(l.WorkWords), fmt.Sprint(l.Cells), outPath, fmt.Sprint(rowBlock))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("hostcuda: %v\n%s", err, out)
	}
	data, err := os.ReadFile(outPath)
	if err != nil {
		t.Fatal(err)
	}
	work := make([]int64, len(data)/8)
	for i := range work {
		work[i] = int64(binary.LittleEndian.Uint64(data[8*i:]))
	}
	b.BondOut = u32s(work, l, DBondOut, l.BondCap)
	return work
}

func vectorInputs(t *testing.T) []yuma.Input {
	t.Helper()
	return loadVectorInputs(t)
}
