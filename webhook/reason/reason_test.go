package reason

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"strings"
	"testing"
)

// All() must list every Code constant declared in this package, exactly once.
func TestAllListsEveryDeclaredCode(t *testing.T) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "reason.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	declared := map[Code]bool{}
	ast.Inspect(f, func(n ast.Node) bool {
		vs, ok := n.(*ast.ValueSpec)
		if !ok || vs.Type == nil {
			return true
		}
		if id, ok := vs.Type.(*ast.Ident); ok && id.Name == "Code" {
			for _, v := range vs.Values {
				if lit, ok := v.(*ast.BasicLit); ok {
					declared[Code(strings.Trim(lit.Value, `"`))] = true
				}
			}
		}
		return true
	})
	listed := map[Code]bool{}
	for _, c := range All() {
		if listed[c] {
			t.Errorf("%s listed twice", c)
		}
		listed[c] = true
		if !declared[c] {
			t.Errorf("%s listed but not declared", c)
		}
	}
	for c := range declared {
		if !listed[c] {
			t.Errorf("%s declared but missing from All()", c)
		}
	}
	if len(declared) < 20 {
		t.Fatalf("parsed only %d codes; the parser missed declarations", len(declared))
	}
}

// Every code is documented for auditors, and the documentation names no code that does not exist.
func TestEveryCodeIsDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/audit.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]bool{}
	for _, line := range strings.Split(string(doc), "\n") {
		if strings.HasPrefix(line, "| `") {
			name := strings.TrimPrefix(line, "| `")
			rows[name[:strings.Index(name, "`")]] = true
		}
	}
	known := map[string]bool{}
	for _, c := range All() {
		known[string(c)] = true
		if !rows[string(c)] {
			t.Errorf("reason code %s is not documented in docs/audit.md", c)
		}
	}
	for r := range rows {
		if r[0] >= 'A' && r[0] <= 'Z' && !known[r] {
			t.Errorf("docs/audit.md documents %s, which is no reason code", r)
		}
	}
}
