package consensus

import (
	"go/parser"
	"go/token"
	"os"
	"strconv"
	"strings"
	"testing"
)

// The core does no I/O: no clock reads, network, disk or randomness.
func TestNoIOImports(t *testing.T) {
	banned := map[string]bool{"net": true, "os": true, "math/rand": true, "math/rand/v2": true,
		"crypto/rand": true, "io/ioutil": true, "syscall": true, "github.com/quic-go/quic-go": true,
		"github.com/syndtr/goleveldb/leveldb": true}
	ents, _ := os.ReadDir(".")
	for _, e := range ents {
		name := e.Name()
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, im := range f.Imports {
			p, _ := strconv.Unquote(im.Path.Value)
			if banned[p] {
				t.Errorf("%s imports %s", name, p)
			}
		}
	}
	src, _ := os.ReadFile("node.go")
	if strings.Contains(string(src), "time.Now") || strings.Contains(string(src), "time.Sleep") {
		t.Error("node.go reads the clock")
	}
}
