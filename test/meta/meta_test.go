package meta

import (
	"errors"
	"go/ast"
	"go/build"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// bannedImports are import paths (and everything under them) that no file of the
// module may import, with the reason.
var bannedImports = map[string]string{
	"k8s.io/kubernetes":                            "kube-apiserver's internals are not a library (DESIGN.md: our own API server)",
	"k8s.io/apiserver":                             "the generic apiserver needs internal API types; kubesvc has its own (DESIGN.md)",
	"k8s.io/component-base/metrics/legacyregistry": "a process-global registry: take an injected prometheus.Registerer",
	"github.com/pkg/errors":                        "wrap with fmt.Errorf and %w, inspect with errors.Is/As",
	"io/ioutil":                                    "deprecated: use io and os",
	"github.com/sirupsen/logrus":                   "log with log/slog or klog (DESIGN.md)",
	"github.com/golang/glog":                       "log with log/slog or klog (DESIGN.md)",
}

// bannedCalls are package-level identifiers that non-test code under internal/
// may not use, by import path, with the reason.
var bannedCalls = map[string]map[string]string{
	"context": {
		"Background": "pass the caller's ctx down",
		"TODO":       "pass the caller's ctx down",
	},
	"github.com/prometheus/client_golang/prometheus": {
		"DefaultRegisterer": "the process-global registry: take an injected Registerer",
		"DefaultGatherer":   "the process-global registry: take an injected Gatherer",
		"MustRegister":      "registers with the process-global registry: use the injected Registerer",
		"Register":          "registers with the process-global registry: use the injected Registerer",
	},
	"k8s.io/client-go/util/workqueue": {
		"SetProvider": "sets client-go's process-global metrics provider: give each queue its MetricsProvider",
	},
}

// rootContextMarker, in a comment on the line of a banned context call or the line
// above, allows it; the rest of the comment says why.
const rootContextMarker = "root context:"

// allowedCalls are uses in files this test's authors could not annotate, by
// slash-separated path from the module root and "pkg.Name", with the reason.
// Prefer a rootContextMarker comment in the file.
var allowedCalls = map[string]map[string]string{}

// goFile is one parsed Go file of the module.
type goFile struct {
	rel  string // slash-separated path from the module root
	fset *token.FileSet
	file *ast.File
}

func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = parent
	}
}

// walkDirs calls fn for every directory of the module that Go tooling looks at
// (no testdata, vendor, hidden or underscore directories), by slash path from root.
func walkDirs(t *testing.T, root string, fn func(rel string)) {
	t.Helper()
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		name := d.Name()
		if p != root && (name == "testdata" || name == "vendor" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")) {
			return filepath.SkipDir
		}
		if p != root {
			if _, err := os.Stat(filepath.Join(p, "go.mod")); err == nil {
				return filepath.SkipDir // another module
			}
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		fn(filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// parseModule parses every Go file of the module, test files included.
func parseModule(t *testing.T, root string) []goFile {
	t.Helper()
	var files []goFile
	walkDirs(t, root, func(rel string) {
		entries, err := os.ReadDir(filepath.Join(root, rel))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if e.IsDir() || !strings.HasSuffix(e.Name(), ".go") {
				continue
			}
			fset := token.NewFileSet()
			f, err := parser.ParseFile(fset, filepath.Join(root, rel, e.Name()), nil, parser.ParseComments|parser.SkipObjectResolution)
			if err != nil {
				t.Errorf("parse: %v", err)
				continue
			}
			files = append(files, goFile{rel: path.Join(rel, e.Name()), fset: fset, file: f})
		}
	})
	if len(files) == 0 {
		t.Fatal("no Go files found")
	}
	return files
}

func under(rel string, dirs ...string) bool {
	for _, d := range dirs {
		if rel == d || strings.HasPrefix(rel, d+"/") {
			return true
		}
	}
	return false
}

// TestPackageDocs: every package under internal/ and cmd/ has a package doc
// comment (what the package is for, its contract).
func TestPackageDocs(t *testing.T) {
	root := moduleRoot(t)
	checked := 0
	walkDirs(t, root, func(rel string) {
		if !under(rel, "internal", "cmd") {
			return
		}
		p, err := build.ImportDir(filepath.Join(root, rel), build.ImportComment)
		var noGo *build.NoGoError
		if errors.As(err, &noGo) {
			return
		}
		if err != nil {
			t.Errorf("%s: %v", rel, err)
			return
		}
		checked++
		if p.Doc == "" {
			t.Errorf("%s: package %s has no doc comment (add a doc.go)", rel, p.Name)
		}
	})
	if checked == 0 {
		t.Fatal("no packages under internal/ and cmd/")
	}
}

func importPath(spec *ast.ImportSpec) string {
	p, err := strconv.Unquote(spec.Path.Value)
	if err != nil {
		return spec.Path.Value
	}
	return p
}

// TestBannedImports: no file of the module imports a banned dependency.
func TestBannedImports(t *testing.T) {
	for _, f := range parseModule(t, moduleRoot(t)) {
		for _, spec := range f.file.Imports {
			p := importPath(spec)
			for banned, why := range bannedImports {
				if p == banned || strings.HasPrefix(p, banned+"/") {
					t.Errorf("%s:%d: imports %s: %s", f.rel, f.fset.Position(spec.Pos()).Line, p, why)
				}
			}
		}
	}
}

// TestBannedCalls: non-test code under internal/ does not start contexts from
// nothing or use process-global metrics registries (see bannedCalls), except
// where a rootContextMarker comment or allowedCalls says why.
func TestBannedCalls(t *testing.T) {
	root := moduleRoot(t)
	allowedUsed := map[string]bool{}
	checked := 0
	for _, f := range parseModule(t, root) {
		if !under(f.rel, "internal") || strings.HasSuffix(f.rel, "_test.go") {
			continue
		}
		// local import name → banned identifiers of that package
		local := map[string]map[string]string{}
		names := map[string]string{} // local name → import path
		testSupport := false
		for _, spec := range f.file.Imports {
			p := importPath(spec)
			if p == "testing" {
				testSupport = true
			}
			ids, ok := bannedCalls[p]
			if !ok {
				continue
			}
			name := path.Base(p)
			if spec.Name != nil {
				name = spec.Name.Name
			}
			local[name], names[name] = ids, p
		}
		if testSupport || len(local) == 0 {
			continue
		}
		checked++
		marked := markedLines(f)
		ast.Inspect(f.file, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			x, ok := sel.X.(*ast.Ident)
			if !ok {
				return true
			}
			why, banned := local[x.Name][sel.Sel.Name]
			if !banned {
				return true
			}
			line := f.fset.Position(sel.Pos()).Line
			use := path.Base(names[x.Name]) + "." + sel.Sel.Name
			switch {
			case names[x.Name] == "context" && (marked[line] || marked[line-1]):
			case allowedCalls[f.rel][use] != "":
				allowedUsed[f.rel+" "+use] = true
			default:
				t.Errorf("%s:%d: %s: %s", f.rel, line, use, why)
			}
			return true
		})
	}
	if checked == 0 {
		t.Fatal("no file under internal/ imports a package with banned identifiers: is the tree there?")
	}
	for rel, uses := range allowedCalls {
		for use := range uses {
			if !allowedUsed[rel+" "+use] {
				t.Errorf("allowedCalls: %s no longer uses %s: remove the entry", rel, use)
			}
		}
	}
}

// markedLines returns the lines of f that carry a rootContextMarker comment.
func markedLines(f goFile) map[int]bool {
	out := map[int]bool{}
	for _, cg := range f.file.Comments {
		for _, c := range cg.List {
			text := strings.TrimSpace(strings.TrimPrefix(strings.TrimPrefix(c.Text, "//"), "/*"))
			if strings.HasPrefix(text, rootContextMarker) {
				out[f.fset.Position(c.Pos()).Line] = true
			}
		}
	}
	return out
}
