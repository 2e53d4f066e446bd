//go:build !cuda

package main

import (
	"path/filepath"
	"strings"
	"testing"

	"taobox/assets"
	"taobox/model"
)

// Without a model file, model info and model generate use the embedded
// tiny model.
func TestEmbeddedModel(t *testing.T) {
	var info modelInfo
	runJSON(t, &info, "model", "info", "--json")
	if info.File != assets.TinyName || info.SHA256 != assets.TinySHA256 || info.Format != "GGUF v3" || !info.TiedEmbeddings {
		t.Fatalf("model info without FILE: %+v", info)
	}
	r := taobox(t, nil, "model", "info")
	if r.code != 0 || !strings.Contains(r.stdout, "(embedded tiny model)") {
		t.Fatalf("model info: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	// From BOS alone: a story of 12 tokens.
	var g map[string]any
	runJSON(t, &g, "model", "generate", "--prompt-ids", "1", "--max-tokens", "12", "--json")
	if ids, _ := g["ids"].([]any); len(ids) != 12 {
		t.Fatalf("generate with the embedded model: %v", g)
	}
}

func TestTrainTiny(t *testing.T) {
	out := filepath.Join(t.TempDir(), "t.gguf")
	r := taobox(t, nil, "model", "train-tiny", "--steps", "2", "--threads", "1", "--out", out)
	if r.code != 0 || !strings.Contains(r.stdout, "wrote "+out) || !strings.Contains(r.stderr, "step    2/2") {
		t.Fatalf("train-tiny: exit %d\nstdout %s\nstderr %s", r.code, r.stdout, r.stderr)
	}
	m, err := model.LoadGGUF(out)
	if err != nil {
		t.Fatal(err)
	}
	if m.Config.Dim != 128 || m.Config.NLayers != 4 {
		t.Fatalf("trained config %+v", m.Config)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"model", "train-tiny", "--out", out}, "taobox: model train-tiny: --out: "},
		{[]string{"model", "train-tiny", "--steps", "0"}, "taobox: model train-tiny: --steps: "},
		{[]string{"model", "train-tiny", "--threads", "0"}, "taobox: model train-tiny: --threads: "},
	} {
		r := taobox(t, nil, tc.args...)
		if r.code != 2 || r.stdout != "" || !strings.HasPrefix(r.stderr, tc.want) {
			t.Errorf("taobox %v: exit %d, stdout %q, stderr %q; want exit 2 and %q", tc.args, r.code, r.stdout, r.stderr, tc.want)
		}
	}
}
