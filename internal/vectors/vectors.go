// Package vectors finds and reads the Yuma ground-truth vectors for tests.
//
// The vectors live in ../shared/vectors/yuma beside the checkout; a copy is
// kept in chain/yuma/testdata so that a fresh clone without ../shared still
// tests. Paths resolve from the module root, so any package can call this.
package vectors

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
)

// Path returns the path of the vector file name (e.g. "epochs.json"): the
// shared copy when it exists, else the one in chain/yuma/testdata.
func Path(name string) (string, error) {
	_, self, _, ok := runtime.Caller(0)
	if !ok {
		return "", fmt.Errorf("vectors: cannot locate the module root")
	}
	root := filepath.Join(filepath.Dir(self), "..", "..")
	for _, p := range []string{
		filepath.Join(root, "..", "shared", "vectors", "yuma", name),
		filepath.Join(root, "chain", "yuma", "testdata", name),
	} {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("vectors: %s is neither in ../shared/vectors/yuma nor in chain/yuma/testdata", name)
}

// Read returns the contents of the vector file name.
func Read(name string) ([]byte, error) {
	p, err := Path(name)
	if err != nil {
		return nil, err
	}
	return os.ReadFile(p)
}

// Epoch is one whole epoch of epochs.json: the input state right before it
// and the bit-exact reference outputs.
type Epoch struct {
	Record  int             // index of its record in the file's "epoch" list
	Test    string          // the subtensor test it comes from
	Label   string          // which epoch of that test
	Input   json.RawMessage // input_state
	Outputs json.RawMessage // python_port_outputs
}

// Name is "record_test/label", such as "07_test_yuma_3_kappa_moves_last/epoch 0",
// unique across the file (a test can have two records: sparse and dense).
func (e Epoch) Name() string { return fmt.Sprintf("%02d_%s/%s", e.Record, e.Test, e.Label) }

// Epochs returns every whole-epoch record of epochs.json, in file order.
func Epochs() ([]Epoch, error) {
	data, err := Read("epochs.json")
	if err != nil {
		return nil, err
	}
	var file struct {
		Epoch []struct {
			Test   string `json:"test"`
			Epochs []struct {
				Label   string          `json:"label"`
				Input   json.RawMessage `json:"input_state"`
				Outputs json.RawMessage `json:"python_port_outputs"`
			} `json:"epochs"`
		} `json:"epoch"`
	}
	if err := json.Unmarshal(data, &file); err != nil {
		return nil, fmt.Errorf("vectors: epochs.json: %w", err)
	}
	var out []Epoch
	for ri, rec := range file.Epoch {
		for _, ep := range rec.Epochs {
			out = append(out, Epoch{Record: ri, Test: rec.Test, Label: ep.Label, Input: ep.Input, Outputs: ep.Outputs})
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("vectors: epochs.json holds no epochs")
	}
	return out, nil
}
