// Command gen writes zz_generated_comments.go of package openapi: the facts
// about the Kubernetes API types that live only in their Go comments, which
// reflection cannot see.
//
//   - The +enum types (string types whose doc comment has a +enum line) with
//     the values of their constants, in source order, each with its doc
//     comment rendered as kube-openapi's enum generator renders it.
//   - The struct fields whose +required or +optional marker overrides the
//     json tag (kube-openapi makes a field required when its json tag lacks
//     omitempty, unless the field's comment says +optional or +required).
//
// It parses the sources of the given packages in the versions the main
// module requires (located with go list, so go.mod decides) and is run by
// go generate in the openapi package:
//
//	go run ./gen -o zz_generated_comments.go k8s.io/api/core/v1 ...
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"go/ast"
	"go/build"
	"go/format"
	"go/parser"
	"go/token"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
)

func main() {
	out := flag.String("o", "zz_generated_comments.go", "output file")
	pkgName := flag.String("package", "openapi", "package name of the output file")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: gen [-o file] [-package name] importpath...\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}
	log.SetFlags(0)
	log.SetPrefix("gen: ")

	pkgs, err := locate(flag.Args())
	if err != nil {
		log.Fatal(err)
	}
	u := &universe{fset: token.NewFileSet(), pkgs: map[string]*pkgInfo{}}
	for _, p := range pkgs {
		if err := u.parse(p); err != nil {
			log.Fatal(err)
		}
	}
	enums, err := u.enums()
	if err != nil {
		log.Fatal(err)
	}
	fields, err := u.requiredOverrides()
	if err != nil {
		log.Fatal(err)
	}
	src, err := render(*pkgName, pkgs, enums, fields)
	if err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(*out, src, 0o644); err != nil {
		log.Fatal(err)
	}
}

// listedPackage is what go list reports about one package.
type listedPackage struct {
	ImportPath string
	Dir        string
	Module     *struct {
		Path    string
		Version string
		Dir     string
	}
}

// locate finds the source directories of the packages in the versions the
// main module requires.
func locate(paths []string) ([]*listedPackage, error) {
	args := append([]string{"list", "-find", "-json=ImportPath,Dir,Module"}, paths...)
	cmd := exec.Command("go", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	b, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list: %v: %s", err, stderr.Bytes())
	}
	var pkgs []*listedPackage
	dec := json.NewDecoder(bytes.NewReader(b))
	for dec.More() {
		p := &listedPackage{}
		if err := dec.Decode(p); err != nil {
			return nil, fmt.Errorf("go list output: %v", err)
		}
		if p.Dir == "" || p.Module == nil {
			return nil, fmt.Errorf("package %s: no source directory in a module", p.ImportPath)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs, nil
}

// universe holds the parsed packages.
type universe struct {
	fset  *token.FileSet
	pkgs  map[string]*pkgInfo
	order []string // import paths in the order given
}

type pkgInfo struct {
	path   string
	types  []*typeInfo           // in source order (files sorted by name)
	consts []*constInfo          // in source order
	byName map[string]*constInfo // constants by name, for references
}

type typeInfo struct {
	name    string
	comment []string // doc comment lines (gengo's CommentLines)
	spec    *ast.TypeSpec
	imports map[string]string // file's import name -> path
}

type constInfo struct {
	pkg     *pkgInfo
	name    string
	typ     ast.Expr // declared type, nil if untyped
	value   ast.Expr
	comment []string
	imports map[string]string

	evaluating bool
	done       bool
	str        string
	err        error
}

// commentLines splits a comment group's text into lines the way gengo does
// (Text strips the comment markers and the first space of each line).
func commentLines(groups ...*ast.CommentGroup) []string {
	for _, g := range groups {
		if g != nil {
			return strings.Split(strings.TrimRight(g.Text(), "\n"), "\n")
		}
	}
	return nil
}

func (u *universe) parse(lp *listedPackage) error {
	entries, err := os.ReadDir(lp.Dir)
	if err != nil {
		return err
	}
	var names []string
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() || !strings.HasSuffix(n, ".go") || strings.HasSuffix(n, "_test.go") {
			continue
		}
		if ok, err := build.Default.MatchFile(lp.Dir, n); err != nil || !ok {
			continue
		}
		names = append(names, n)
	}
	sort.Strings(names)
	p := &pkgInfo{path: lp.ImportPath, byName: map[string]*constInfo{}}
	for _, n := range names {
		f, err := parser.ParseFile(u.fset, filepath.Join(lp.Dir, n), nil, parser.ParseComments|parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		imports := map[string]string{}
		for _, is := range f.Imports {
			path, _ := strconv.Unquote(is.Path.Value)
			name := filepath.Base(path)
			if is.Name != nil {
				name = is.Name.Name
			}
			imports[name] = path
		}
		for _, d := range f.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok {
				continue
			}
			// A declaration's own doc comment belongs to its single spec.
			var declDoc *ast.CommentGroup
			if !gd.Lparen.IsValid() {
				declDoc = gd.Doc
			}
			switch gd.Tok {
			case token.TYPE:
				for _, s := range gd.Specs {
					ts := s.(*ast.TypeSpec)
					p.types = append(p.types, &typeInfo{name: ts.Name.Name, comment: commentLines(ts.Doc, declDoc), spec: ts, imports: imports})
				}
			case token.CONST:
				// Implicit repetition: a spec without type and values repeats the previous ones.
				var prevType ast.Expr
				var prevValues []ast.Expr
				for _, s := range gd.Specs {
					vs := s.(*ast.ValueSpec)
					typ, values := vs.Type, vs.Values
					if typ == nil && len(values) == 0 {
						typ, values = prevType, prevValues
					}
					prevType, prevValues = typ, values
					for i, id := range vs.Names {
						if id.Name == "_" {
							continue
						}
						c := &constInfo{pkg: p, name: id.Name, typ: typ, comment: commentLines(vs.Doc, declDoc), imports: imports}
						if i < len(values) {
							c.value = values[i]
						}
						p.consts = append(p.consts, c)
						p.byName[id.Name] = c
					}
				}
			}
		}
	}
	u.pkgs[p.path] = p
	u.order = append(u.order, p.path)
	return nil
}

// extractTags returns the +key[=value] comment tags of lines, as gengo's
// ExtractCommentTags("+", lines) does.
func extractTags(lines []string) map[string][]string {
	out := map[string][]string{}
	for _, line := range lines {
		line = strings.Trim(line, " ")
		if !strings.HasPrefix(line, "+") {
			continue
		}
		k, v, _ := strings.Cut(line[1:], "=")
		out[k] = append(out[k], v)
	}
	return out
}

// resolveType names the type expression e of a declaration in package p:
// "k8s.io/api/core/v1.Protocol", or "" when it is not a named type.
func resolveType(p *pkgInfo, imports map[string]string, e ast.Expr) string {
	switch e := e.(type) {
	case *ast.Ident:
		return p.path + "." + e.Name
	case *ast.SelectorExpr:
		if x, ok := e.X.(*ast.Ident); ok {
			if path, ok := imports[x.Name]; ok {
				return path + "." + e.Sel.Name
			}
		}
	case *ast.ParenExpr:
		return resolveType(p, imports, e.X)
	}
	return ""
}

// resolveAlias follows type aliases (type A = B) of the parsed packages.
func (u *universe) resolveAlias(name string) string {
	for range 100 {
		i := strings.LastIndex(name, ".")
		if i < 0 {
			return name
		}
		p, ok := u.pkgs[name[:i]]
		if !ok {
			return name
		}
		var target string
		for _, t := range p.types {
			if t.name == name[i+1:] && t.spec.Assign.IsValid() {
				target = resolveType(p, t.imports, t.spec.Type)
			}
		}
		if target == "" {
			return name
		}
		name = target
	}
	return name
}

// stringValue evaluates the string constant c (string literals, references
// to other constants of the parsed packages, conversions, concatenation).
func (u *universe) stringValue(c *constInfo) (string, error) {
	if c.done {
		return c.str, c.err
	}
	if c.evaluating {
		return "", fmt.Errorf("%s.%s: constant refers to itself", c.pkg.path, c.name)
	}
	c.evaluating = true
	c.str, c.err = u.eval(c, c.value)
	c.evaluating, c.done = false, true
	return c.str, c.err
}

func (u *universe) eval(c *constInfo, e ast.Expr) (string, error) {
	switch e := e.(type) {
	case *ast.BasicLit:
		if e.Kind == token.STRING {
			return strconv.Unquote(e.Value)
		}
	case *ast.ParenExpr:
		return u.eval(c, e.X)
	case *ast.Ident:
		if o, ok := c.pkg.byName[e.Name]; ok {
			return u.stringValue(o)
		}
	case *ast.SelectorExpr:
		if x, ok := e.X.(*ast.Ident); ok {
			if p, ok := u.pkgs[c.imports[x.Name]]; ok {
				if o, ok := p.byName[e.Sel.Name]; ok {
					return u.stringValue(o)
				}
			}
		}
	case *ast.CallExpr: // a conversion such as Protocol("TCP")
		if len(e.Args) == 1 {
			return u.eval(c, e.Args[0])
		}
	case *ast.BinaryExpr:
		if e.Op == token.ADD {
			x, err := u.eval(c, e.X)
			if err != nil {
				return "", err
			}
			y, err := u.eval(c, e.Y)
			return x + y, err
		}
	}
	return "", fmt.Errorf("%s.%s: cannot evaluate %s as a string constant", c.pkg.path, c.name, u.pos(e))
}

func (u *universe) pos(n ast.Node) string {
	if n == nil {
		return "<missing value>"
	}
	return u.fset.Position(n.Pos()).String()
}

// enumConst is one value of an enum type with its rendered description.
type enumConst struct {
	value, doc string
}

type enumType struct {
	name   string // "k8s.io/api/core/v1.ServiceType"
	values []enumConst
}

// enumDoc renders the comment of enum constant name the way kube-openapi's
// enumValue.Description does, without the leading " - `"value"` ": the
// lines joined, the name trimmed from the start, every run of whitespace
// (regexp \s: tab, newline, form feed, carriage return, space) one space.
func enumDoc(name string, lines []string) string {
	comment := strings.TrimSpace(strings.Join(lines, " "))
	comment = strings.TrimSpace(strings.TrimPrefix(comment, name))
	var b strings.Builder
	space := false
	for _, r := range comment {
		switch r {
		case '\t', '\n', '\f', '\r', ' ':
			space = true
			continue
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		b.WriteRune(r)
	}
	if space {
		b.WriteByte(' ')
	}
	return b.String()
}

// enums finds the +enum types (defined as string) and their constants, as
// kube-openapi's parseEnums does: every typed constant of the parsed
// packages counts, and of constants sharing a value the one with the longer
// comment wins (at the position of the first).
func (u *universe) enums() ([]*enumType, error) {
	byName := map[string]*enumType{}
	var list []*enumType
	for _, path := range u.order {
		for _, t := range u.pkgs[path].types {
			if _, ok := extractTags(t.comment)["enum"]; !ok {
				continue
			}
			if t.spec.Assign.IsValid() {
				continue // an alias (type A = B) is its target to reflection
			}
			if id, ok := t.spec.Type.(*ast.Ident); !ok || id.Name != "string" {
				// kube-openapi would need the underlying type resolved; none of
				// the parsed packages does this, so say so rather than guess.
				return nil, fmt.Errorf("%s.%s: +enum on a type not declared as string", path, t.name)
			}
			e := &enumType{name: path + "." + t.name}
			byName[e.name] = e
			list = append(list, e)
		}
	}
	type candidate struct {
		enumConst
		comment string
	}
	cands := map[string][]candidate{}
	for _, path := range u.order {
		p := u.pkgs[path]
		for _, c := range p.consts {
			if c.typ == nil {
				continue
			}
			e, ok := byName[u.resolveAlias(resolveType(p, c.imports, c.typ))]
			if !ok {
				continue
			}
			v, err := u.stringValue(c)
			if err != nil {
				return nil, err
			}
			comment := strings.Join(c.comment, " ")
			next := candidate{enumConst{v, enumDoc(c.name, c.comment)}, comment}
			found := false
			for i, old := range cands[e.name] {
				if old.value != v {
					continue
				}
				found = true
				if len(old.comment) < len(comment) || (len(old.comment) == len(comment) && old.comment > comment) {
					cands[e.name][i] = next
				}
			}
			if !found {
				cands[e.name] = append(cands[e.name], next)
			}
		}
	}
	for _, e := range list {
		for _, c := range cands[e.name] {
			e.values = append(e.values, c.enumConst)
		}
	}
	sort.Slice(list, func(i, j int) bool { return list[i].name < list[j].name })
	return list, nil
}

// fieldOverride is a struct field whose marker decides against its json tag.
type fieldOverride struct {
	key      string // "k8s.io/api/apps/v1.DeploymentSpec.Selector"
	required bool
	marker   string
}

// requiredOverrides lists the struct fields that kube-openapi's isOptional
// decides differently from the json tag alone: +required on an omitempty
// field, +optional on a field without omitempty.
func (u *universe) requiredOverrides() ([]fieldOverride, error) {
	var out []fieldOverride
	var errs []error
	for _, path := range u.order {
		for _, t := range u.pkgs[path].types {
			st, ok := t.spec.Type.(*ast.StructType)
			if !ok {
				continue
			}
			for _, f := range st.Fields.List {
				tag := ""
				if f.Tag != nil {
					tag, _ = strconv.Unquote(f.Tag.Value)
				}
				jsonTag, hasJSON := reflect.StructTag(tag).Lookup("json")
				if len(f.Names) == 0 && hasJSON && (jsonTag == "" || strings.HasPrefix(jsonTag, ",")) {
					continue // inlined: its members are listed with their own type
				}
				if jsonTag == "-" {
					continue
				}
				tags := extractTags(commentLines(f.Doc))
				_, optional := tags["optional"]
				_, required := tags["required"]
				names := f.Names
				if len(names) == 0 { // embedded without inline tag: named by the type
					names = []*ast.Ident{embeddedName(f.Type)}
				}
				for _, n := range names {
					if n == nil || !n.IsExported() {
						continue
					}
					key := path + "." + t.name + "." + n.Name
					byTag := !hasOmitempty(jsonTag)
					switch {
					case optional && required:
						errs = append(errs, fmt.Errorf("%s: both +optional and +required", key))
					case required && !byTag:
						out = append(out, fieldOverride{key, true, "+required"})
					case optional && byTag:
						out = append(out, fieldOverride{key, false, "+optional"})
					}
				}
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].key < out[j].key })
	return out, errors.Join(errs...)
}

func embeddedName(e ast.Expr) *ast.Ident {
	switch e := e.(type) {
	case *ast.Ident:
		return e
	case *ast.StarExpr:
		return embeddedName(e.X)
	case *ast.SelectorExpr:
		return e.Sel
	}
	return nil
}

// hasOmitempty is kube-openapi's hasOmitemptyTag on a json tag value.
func hasOmitempty(jsonTag string) bool {
	return strings.HasSuffix(jsonTag, ",omitempty") || strings.Contains(jsonTag, ",omitempty,")
}

func render(pkgName string, pkgs []*listedPackage, enums []*enumType, fields []fieldOverride) ([]byte, error) {
	var b bytes.Buffer
	modules := map[string]string{}
	for _, p := range pkgs {
		modules[p.Module.Path] = p.Module.Version
	}
	var mods []string
	for m, v := range modules {
		mods = append(mods, m+" "+v)
	}
	sort.Strings(mods)
	fmt.Fprintf(&b, "// Code generated by gen/main.go from %s; DO NOT EDIT.\n\n", strings.Join(mods, ", "))
	fmt.Fprintf(&b, "package %s\n\n", pkgName)
	b.WriteString(`// parsedPackage reports whether the comments of the package at path were
// read into enumConstants and requiredMarker.
func parsedPackage(path string) bool {
	switch path {
	case `)
	for i, p := range pkgs {
		if i > 0 {
			b.WriteString(",\n")
		}
		fmt.Fprintf(&b, "%q", p.ImportPath)
	}
	b.WriteString(`:
		return true
	}
	return false
}

// enumConstants returns the constants of the +enum type typeName (its
// package path and name, "k8s.io/api/core/v1.ServiceType"), in source
// order, each with its doc comment as kube-openapi renders it; nil if
// typeName is not an enum type.
func enumConstants(typeName string) []enumConst {
	switch typeName {
`)
	for _, e := range enums {
		fmt.Fprintf(&b, "case %q:\nreturn []enumConst{\n", e.name)
		for _, v := range e.values {
			fmt.Fprintf(&b, "{%q, %q},\n", v.value, v.doc)
		}
		b.WriteString("}\n")
	}
	b.WriteString(`}
	return nil
}

// requiredMarker reports the +required (true) or +optional (false) marker of
// the struct field key ("<package path>.<type>.<Go field name>") where the
// marker overrides the json tag's omitempty; ok is false for other fields.
func requiredMarker(key string) (required, ok bool) {
	switch key {
`)
	for _, f := range fields {
		fmt.Fprintf(&b, "case %q: // %s\nreturn %t, true\n", f.key, f.marker, f.required)
	}
	b.WriteString(`}
	return false, false
}
`)
	src, err := format.Source(b.Bytes())
	if err != nil {
		return nil, fmt.Errorf("formatting output: %v", err)
	}
	return src, nil
}
