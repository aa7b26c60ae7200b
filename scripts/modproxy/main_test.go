package main

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func stat(t *testing.T, dir string, paths []string) []file {
	t.Helper()
	files, err := statFiles(dir, paths)
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func validPaths(sel selection) []string {
	var ps []string
	for _, f := range sel.valid {
		ps = append(ps, f.path)
	}
	return ps
}

func paths(fes []fileError) []string {
	var ps []string
	for _, fe := range fes {
		ps = append(ps, fe.path)
	}
	return ps
}

func TestSelectFiles(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"go.mod":                  "module example.com/m\n\ngo 1.25.0\n",
		"m.go":                    "package m\n",
		"internal/x/x.go":         "package x\n",
		"adapters/a/go.mod":       "module example.com/m/adapters/a\n",
		"adapters/a/a.go":         "package a\n",
		"adapters/a/deep/d.go":    "package deep\n",
		"adapters/doc.txt":        "kept: adapters itself is no module\n",
		"vendor/modules.txt":      "# vendored\n",
		"vendor/example.com/v.go": "package v\n",
		"pkg/vendor/vendor.go":    "package vendor\n",
		"testdata/mod/go.mod":     "module example.com/td\n",
		"testdata/mod/td.go":      "package td\n",
		"testdata/corpus":         "kept\n",
	})
	if err := os.Symlink("m.go", filepath.Join(dir, "link.go")); err != nil {
		t.Fatal(err)
	}
	listed := []string{
		"go.mod", "m.go", "internal/x/x.go", "adapters/a/go.mod", "adapters/a/a.go",
		"adapters/a/deep/d.go", "adapters/doc.txt", "vendor/modules.txt", "vendor/example.com/v.go",
		"pkg/vendor/vendor.go", "testdata/mod/go.mod", "testdata/mod/td.go", "testdata/corpus",
		"link.go", "deleted.go",
	}
	sel := selectFiles(stat(t, dir, listed), "1.25.0")
	if len(sel.invalid) != 0 {
		t.Fatalf("invalid: %v", sel.invalid)
	}
	wantValid := []string{"adapters/doc.txt", "go.mod", "internal/x/x.go", "m.go", "pkg/vendor/vendor.go", "testdata/corpus"}
	if got := validPaths(sel); !slices.Equal(got, wantValid) {
		t.Errorf("valid = %q, want %q", got, wantValid)
	}
	wantOmitted := []string{
		"adapters/a/a.go", "adapters/a/deep/d.go", "adapters/a/go.mod", "deleted.go", "link.go",
		"testdata/mod/go.mod", "testdata/mod/td.go", "vendor/example.com/v.go", "vendor/modules.txt",
	}
	if got := paths(sel.omitted); !slices.Equal(got, wantOmitted) {
		t.Errorf("omitted = %q, want %q", got, wantOmitted)
	}
}

func TestSelectFilesInvalid(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"go.mod":      "module example.com/m\n\ngo 1.25.0\n",
		"README.md":   "a\n",
		"readme.md":   "b\n",
		"what?.txt":   "c\n",
		"aux.go":      "package m\n",
		"trailing.":   "d\n",
		"sub/GO.MOD":  "e\n",
		"sub/ok.go":   "package sub\n",
		"quote'd.txt": "f\n",
	})
	sel := selectFiles(stat(t, dir, []string{"go.mod", "README.md", "readme.md", "what?.txt", "aux.go", "trailing.", "quote'd.txt", "sub/ok.go"}), "1.25.0")
	want := []string{"aux.go", "quote'd.txt", "readme.md", "trailing.", "what?.txt"}
	if got := paths(sel.invalid); !slices.Equal(got, want) {
		t.Errorf("invalid = %q, want %q (all: %v)", got, want, sel.invalid)
	}
	// A root go.mod spelled in another case is refused.
	sel = selectFiles([]file{{path: "GO.MOD", size: 3, data: []byte("x\n")}}, "")
	if len(sel.invalid) != 1 {
		t.Errorf("GO.MOD at the root: invalid = %v, want one", sel.invalid)
	}
}

func TestVendorRuleBefore124(t *testing.T) {
	// Before go 1.24 vendor/modules.txt stays, and "pkg/vendor/vendor.go"
	// is judged with the old offset (golang.org/issue/37397).
	if isVendoredPackage("vendor/modules.txt", "1.23") {
		t.Error("vendor/modules.txt left out for go 1.23")
	}
	if !isVendoredPackage("vendor/modules.txt", "1.24") {
		t.Error("vendor/modules.txt kept for go 1.24")
	}
	if !isVendoredPackage("x/vendor/a/b.go", "1.25.0") || isVendoredPackage("x/vendor/b.go", "1.25.0") {
		t.Error("wrong vendor rule for go 1.25")
	}
}

func TestPublishLayout(t *testing.T) {
	out := t.TempDir()
	gomod := []byte("module example.com/Upper/m\n\ngo 1.25.0\n\nreplace example.com/x => ../x\n")
	var zbuf bytes.Buffer
	src := t.TempDir()
	writeFiles(t, src, map[string]string{"go.mod": string(gomod), "m.go": "package m\n"})
	prefix := "example.com/Upper/m@v0.1.0/"
	if err := writeZip(&zbuf, prefix, stat(t, src, []string{"m.go", "go.mod"})); err != nil {
		t.Fatal(err)
	}
	when := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := writeProxy(out, "example.com/Upper/m", "v0.1.0", gomod, zbuf.Bytes(), when); err != nil {
		t.Fatal(err)
	}
	vdir := filepath.Join(out, "example.com", "!upper", "m", "@v")
	list, err := os.ReadFile(filepath.Join(vdir, "list"))
	if err != nil || string(list) != "v0.1.0\n" {
		t.Errorf("list = %q, %v", list, err)
	}
	mod, err := os.ReadFile(filepath.Join(vdir, "v0.1.0.mod"))
	if err != nil || !bytes.Equal(mod, gomod) {
		t.Errorf(".mod = %q, %v; want go.mod verbatim", mod, err)
	}
	var info struct{ Version, Time string }
	data, err := os.ReadFile(filepath.Join(vdir, "v0.1.0.info"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &info); err != nil || info.Version != "v0.1.0" || info.Time != "2026-01-02T03:04:05Z" {
		t.Errorf(".info = %s (%v)", data, err)
	}
	zr, err := zip.OpenReader(filepath.Join(vdir, "v0.1.0.zip"))
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	var names []string
	for _, f := range zr.File {
		if !strings.HasPrefix(f.Name, prefix) {
			t.Errorf("zip entry %q lacks the prefix %q", f.Name, prefix)
		}
		names = append(names, f.Name)
	}
	if want := []string{prefix + "go.mod", prefix + "m.go"}; !slices.Equal(names, want) {
		t.Errorf("zip entries = %q, want %q", names, want)
	}

	// A second version keeps the first in the list.
	if err := writeProxy(out, "example.com/Upper/m", "v0.2.0", gomod, zbuf.Bytes(), when); err != nil {
		t.Fatal(err)
	}
	if list, _ := os.ReadFile(filepath.Join(vdir, "list")); string(list) != "v0.1.0\nv0.2.0\n" {
		t.Errorf("list after v0.2.0 = %q", list)
	}
}

func TestModulePathAndVersion(t *testing.T) {
	for _, tc := range []struct{ gomod, want string }{
		{"module github.com/a/b\n", "github.com/a/b"},
		{"// comment\nmodule \"github.com/a/b\" // c\n\ngo 1.25.0\n", "github.com/a/b"},
	} {
		if got, err := modulePath([]byte(tc.gomod)); err != nil || got != tc.want {
			t.Errorf("modulePath(%q) = %q, %v", tc.gomod, got, err)
		}
	}
	if _, err := modulePath([]byte("go 1.25.0\n")); err == nil {
		t.Error("no module directive accepted")
	}
	for _, tc := range []struct {
		mod, ver string
		ok       bool
	}{
		{"github.com/a/b", "v0.1.0", true},
		{"github.com/a/b", "v1.2.3-rc.1", true},
		{"github.com/a/b", "0.1.0", false},
		{"github.com/a/b", "v0.1", false},
		{"github.com/a/b", "v2.0.0", false},
		{"github.com/a/b/v2", "v2.0.0", true},
		{"github.com/a/b/v2", "v1.0.0", false},
	} {
		if err := checkVersion(tc.mod, tc.ver); (err == nil) != tc.ok {
			t.Errorf("checkVersion(%s, %s) = %v, want ok=%v", tc.mod, tc.ver, err, tc.ok)
		}
	}
}

func TestTarFiles(t *testing.T) {
	// What git archive writes: a pax global header with the commit, the
	// directories, files and a symbolic link.
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range []*tar.Header{
		{Typeflag: tar.TypeXGlobalHeader, Name: "pax_global_header", PAXRecords: map[string]string{"comment": "0123abcd"}},
		{Typeflag: tar.TypeDir, Name: "sub/", Mode: 0o755},
		{Typeflag: tar.TypeReg, Name: "sub/b.go", Mode: 0o644, Size: 10},
		{Typeflag: tar.TypeReg, Name: "go.mod", Mode: 0o644, Size: 21},
		{Typeflag: tar.TypeSymlink, Name: "link", Linkname: "go.mod", Mode: 0o777},
	} {
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		switch h.Name {
		case "sub/b.go":
			tw.Write([]byte("package b\n"))
		case "go.mod":
			tw.Write([]byte("module example.com/m\n"))
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	files, err := tarFiles(&buf)
	if err != nil {
		t.Fatal(err)
	}
	sel := selectFiles(files, "")
	if got, want := validPaths(sel), []string{"go.mod", "sub/b.go"}; !slices.Equal(got, want) {
		t.Errorf("valid = %q, want %q", got, want)
	}
	if got, want := paths(sel.omitted), []string{"link"}; !slices.Equal(got, want) {
		t.Errorf("omitted = %q, want %q", got, want)
	}
	if data, _ := sel.valid[0].read(); string(data) != "module example.com/m\n" {
		t.Errorf("go.mod content = %q", data)
	}
}
