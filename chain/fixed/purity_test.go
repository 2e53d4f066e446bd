package fixed

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestConsensusCodeHasNoFloatsOrBigInts reads the non-test sources of the
// consensus arithmetic (chain/fixed, chain/yuma, chain/yuma/ymath) and fails
// on any import of math/big and any float type, float literal or float
// formatting, except in the two display helpers I32F32.Float64 and
// I32F32.String, which no consensus code calls.
func TestConsensusCodeHasNoFloatsOrBigInts(t *testing.T) {
	display := map[string]bool{"Float64": true, "String": true}
	files := 0
	for _, dir := range []string{".", "../yuma", "../yuma/ymath"} {
		names, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range names {
			if strings.HasSuffix(name, "_test.go") {
				continue
			}
			src, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			fset := token.NewFileSet()
			f, err := parser.ParseFile(fset, name, src, parser.SkipObjectResolution)
			if err != nil {
				t.Fatal(err)
			}
			files++
			for _, imp := range f.Imports {
				if p, _ := strconv.Unquote(imp.Path.Value); p == "math/big" {
					t.Errorf("%s imports math/big", fset.Position(imp.Pos()))
				}
			}
			for _, decl := range f.Decls {
				fn, isFunc := decl.(*ast.FuncDecl)
				allowed := isFunc && dir == "." && display[fn.Name.Name] && fn.Recv != nil &&
					recvType(fn.Recv.List[0].Type) == "I32F32"
				if allowed {
					continue
				}
				ast.Inspect(decl, func(n ast.Node) bool {
					switch x := n.(type) {
					case *ast.Ident:
						switch x.Name {
						case "float32", "float64", "complex64", "complex128", "FormatFloat", "ParseFloat":
							t.Errorf("%s: %s in consensus code", fset.Position(x.Pos()), x.Name)
						}
					case *ast.BasicLit:
						if x.Kind == token.FLOAT || x.Kind == token.IMAG {
							t.Errorf("%s: float literal %s in consensus code", fset.Position(x.Pos()), x.Value)
						}
					}
					return true
				})
			}
		}
	}
	if files < 15 {
		t.Fatalf("read only %d source files; the package layout changed, update this test", files)
	}
}

// recvType returns the name of a receiver type (T or *T).
func recvType(e ast.Expr) string {
	if s, ok := e.(*ast.StarExpr); ok {
		e = s.X
	}
	if id, ok := e.(*ast.Ident); ok {
		return id.Name
	}
	return ""
}
