// Command modproxy writes a Go module proxy in the layout that
// GOPROXY=file://DIR reads, for modules of a git working tree at one version
// that is not tagged yet:
//
//	DIR/<module path>/@v/list
//	DIR/<module path>/@v/<version>.info
//	DIR/<module path>/@v/<version>.mod
//	DIR/<module path>/@v/<version>.zip
//
// It is what scripts/check-install.sh serves to a module outside the
// repository, so that the module resolves the core and the adapters the way a
// user's `go get` will once the tags of RELEASING.md are pushed.
//
// The zip follows the module zip format (golang.org/x/mod/zip), written with
// the standard library only: every file sits under <module>@<version>/; the
// files are those git tracks in the module's directory (so build outputs and
// node_modules stay out, as they do from the tagged commit), read from the
// working tree; a subdirectory holding its own go.mod (a nested module) is left
// out, and so are vendored packages, symbolic links and other irregular files.
// A file name the go command would refuse to extract (an invalid character, a
// case-insensitive collision, a go.mod too large) is an error naming the file.
// The .mod file is the module's go.mod verbatim.
//
// With -rev, the files and go.mod are those of a git revision instead of the
// working tree, taken with `git archive` as the go command takes a tagged
// module from its repository: what tagging that revision would publish.
//
// Usage:
//
//	modproxy -out DIR -version vX.Y.Z [-rev REV] [-v] MODULE_DIR...
package main

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Limits of golang.org/x/mod/zip, which the go command enforces.
const (
	maxZipFile = 500 << 20 // total uncompressed size of a module zip
	maxGoMod   = 16 << 20  // size of go.mod
	maxLICENSE = 16 << 20  // size of LICENSE
)

func main() {
	out := flag.String("out", "", "directory to write the proxy into (created if missing)")
	version := flag.String("version", "", "version to publish every module at, such as v0.1.0")
	rev := flag.String("rev", "", "publish the files of this git revision (such as HEAD) instead of the working tree")
	verbose := flag.Bool("v", false, "list the files left out of each zip, and why")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: modproxy -out DIR -version vX.Y.Z [-rev REV] [-v] MODULE_DIR...\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if *out == "" || *version == "" || flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}
	now := time.Now().UTC().Truncate(time.Second)
	status := 0
	for _, dir := range flag.Args() {
		res, err := publish(*out, dir, *version, *rev, now)
		if err != nil {
			fmt.Fprintf(os.Stderr, "modproxy: %s: %v\n", dir, err)
			status = 1
			continue
		}
		fmt.Printf("%s %s: %d files, %d left out\n", res.module, *version, len(res.files), len(res.omitted))
		if *verbose {
			for _, fe := range res.omitted {
				fmt.Printf("\tleft out %s: %s\n", fe.path, fe.reason)
			}
		}
	}
	os.Exit(status)
}

// fileError is a file left out of a zip (omitted) or one that makes the zip
// unusable (invalid), with the reason.
type fileError struct {
	path   string
	reason string
}

func (fe fileError) String() string { return fe.path + ": " + fe.reason }

type published struct {
	module  string
	files   []string
	omitted []fileError
}

// publish writes the proxy files of the module in dir at version into out,
// from the working tree or, when rev is not empty, from that git revision.
func publish(out, dir, version, rev string, t time.Time) (published, error) {
	var files []file
	var err error
	if rev == "" {
		files, err = worktreeFiles(dir)
	} else {
		files, err = revFiles(dir, rev)
	}
	if err != nil {
		return published{}, err
	}
	var gomod []byte
	for _, f := range files {
		if f.path == "go.mod" && !f.missing {
			if gomod, err = f.read(); err != nil {
				return published{}, err
			}
		}
	}
	if gomod == nil {
		return published{}, errors.New("no go.mod tracked by git")
	}
	modPath, err := modulePath(gomod)
	if err != nil {
		return published{}, fmt.Errorf("go.mod: %v", err)
	}
	if err := checkVersion(modPath, version); err != nil {
		return published{}, err
	}
	sel := selectFiles(files, goVersion(gomod))
	if len(sel.invalid) > 0 {
		var msgs []string
		for _, fe := range sel.invalid {
			msgs = append(msgs, fe.String())
		}
		return published{}, fmt.Errorf("%s@%s: the go command would refuse this module zip:\n\t%s", modPath, version, strings.Join(msgs, "\n\t"))
	}
	var zbuf bytes.Buffer
	if err := writeZip(&zbuf, modPath+"@"+version+"/", sel.valid); err != nil {
		return published{}, err
	}
	if err := writeProxy(out, modPath, version, gomod, zbuf.Bytes(), t); err != nil {
		return published{}, err
	}
	res := published{module: modPath, omitted: sel.omitted}
	for _, f := range sel.valid {
		res.files = append(res.files, f.path)
	}
	return res, nil
}

// writeProxy writes list, .info, .mod and .zip of modPath@version under out.
// A list already there keeps its other versions.
func writeProxy(out, modPath, version string, gomod, zipData []byte, t time.Time) error {
	esc, err := escapePath(modPath)
	if err != nil {
		return err
	}
	escVer, err := escapePath(version)
	if err != nil {
		return err
	}
	vdir := filepath.Join(out, filepath.FromSlash(esc), "@v")
	if err := os.MkdirAll(vdir, 0o755); err != nil {
		return err
	}
	info, err := json.Marshal(struct {
		Version string
		Time    string
	}{version, t.Format(time.RFC3339)})
	if err != nil {
		return err
	}
	var versions []string
	if old, err := os.ReadFile(filepath.Join(vdir, "list")); err == nil {
		versions = strings.Fields(string(old))
	}
	if !slices.Contains(versions, version) {
		versions = append(versions, version)
	}
	files := []struct {
		name string
		data []byte
	}{
		{escVer + ".info", info},
		{escVer + ".mod", gomod},
		{escVer + ".zip", zipData},
		{"list", []byte(strings.Join(versions, "\n") + "\n")},
	}
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(vdir, f.name), f.data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// file is a candidate for a module zip: a path relative to the module root
// (slash-separated), its type and size, and where its content is.
type file struct {
	path    string
	mode    fs.FileMode // only the type bits matter
	size    int64
	missing bool   // tracked by git but deleted in the working tree
	disk    string // the working tree's copy, or
	data    []byte // the content at a revision
}

func (f file) read() ([]byte, error) {
	if f.disk != "" {
		return os.ReadFile(f.disk)
	}
	return f.data, nil
}

// worktreeFiles lists the files git tracks under dir, as they are in the
// working tree.
func worktreeFiles(dir string) ([]file, error) {
	out, err := git(dir, "ls-files", "-z", "--cached")
	if err != nil {
		return nil, err
	}
	var paths []string
	for _, p := range strings.Split(string(out), "\x00") {
		if p != "" {
			paths = append(paths, p)
		}
	}
	return statFiles(dir, paths)
}

// statFiles describes paths (slash-separated, relative to dir) from the file
// system.
func statFiles(dir string, paths []string) ([]file, error) {
	paths = slices.Clone(paths)
	slices.Sort(paths)
	paths = slices.Compact(paths)
	var files []file
	for _, p := range paths {
		disk := filepath.Join(dir, filepath.FromSlash(p))
		fi, err := os.Lstat(disk)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			files = append(files, file{path: p, missing: true})
		case err != nil:
			return nil, err
		default:
			files = append(files, file{path: p, mode: fi.Mode().Type(), size: fi.Size(), disk: disk})
		}
	}
	return files, nil
}

// revFiles lists the files of dir at a git revision, taken with git archive
// and the settings the go command uses for it.
func revFiles(dir, rev string) ([]file, error) {
	out, err := git(dir, "-c", "core.autocrlf=input", "-c", "core.eol=lf", "archive", "--format=tar", rev)
	if err != nil {
		return nil, err
	}
	return tarFiles(bytes.NewReader(out))
}

// tarFiles reads the files of a tar archive (directories and pax global
// headers are skipped).
func tarFiles(r io.Reader) ([]file, error) {
	tr := tar.NewReader(r)
	var files []file
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		f := file{path: strings.TrimPrefix(h.Name, "./")}
		switch h.Typeflag {
		case tar.TypeDir, tar.TypeXGlobalHeader:
			continue
		case tar.TypeReg:
			if f.data, err = io.ReadAll(tr); err != nil {
				return nil, err
			}
			f.size = int64(len(f.data))
		case tar.TypeSymlink:
			f.mode = fs.ModeSymlink
		default:
			f.mode = fs.ModeIrregular
		}
		files = append(files, f)
	}
	slices.SortFunc(files, func(a, b file) int { return strings.Compare(a.path, b.path) })
	return files, nil
}

func git(dir string, args ...string) ([]byte, error) {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("git %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

type selection struct {
	valid   []file
	omitted []fileError
	invalid []fileError
}

// selectFiles applies the rules of the module zip format to files, sorted by
// path, as golang.org/x/mod/zip.Create does, goVers being the go directive of
// the module's go.mod.
func selectFiles(files []file, goVers string) selection {
	var sel selection

	// Directories holding a go.mod (other than the root) are nested modules.
	nested := make(map[string]bool)
	for _, f := range files {
		d, base := path.Split(f.path)
		if d != "" && strings.EqualFold(base, "go.mod") && !f.missing && f.mode.IsRegular() {
			nested[d] = true
		}
	}
	inNested := func(p string) bool {
		for {
			d, _ := path.Split(p)
			if d == "" {
				return false
			}
			if nested[d] {
				return true
			}
			p = d[:len(d)-1]
		}
	}

	collisions := make(collisionChecker)
	var total int64
	for _, f := range files {
		p := f.path
		bad := func(reason string) { sel.invalid = append(sel.invalid, fileError{p, reason}) }
		skip := func(reason string) { sel.omitted = append(sel.omitted, fileError{p, reason}) }
		switch {
		case p != path.Clean(p) || path.IsAbs(p):
			bad("path is not clean and relative")
			continue
		case isVCSPath(p):
			skip("version control directory")
			continue
		case isVendoredPackage(p, goVers):
			skip("file is in vendor directory")
			continue
		case inNested(p):
			skip("file is in another module")
			continue
		case p == ".hg_archival.txt":
			skip("file is inserted by 'hg archive' and is always omitted")
			continue
		}
		if err := checkFilePath(p); err != nil {
			bad(err.Error())
			continue
		}
		if strings.EqualFold(p, "go.mod") && p != "go.mod" {
			bad("go.mod files must have lowercase names")
			continue
		}
		if f.missing {
			skip("tracked by git but deleted in the working tree")
			continue
		}
		if err := collisions.check(p, f.mode.IsDir()); err != nil {
			bad(err.Error())
			continue
		}
		if f.mode&fs.ModeSymlink != 0 {
			skip("symbolic link")
			continue
		}
		if !f.mode.IsRegular() {
			skip("not a regular file")
			continue
		}
		total += f.size
		if total > maxZipFile {
			bad(fmt.Sprintf("module source tree too large (max size is %d bytes)", maxZipFile))
			continue
		}
		if p == "go.mod" && f.size > maxGoMod {
			bad(fmt.Sprintf("go.mod file too large (max size is %d bytes)", maxGoMod))
			continue
		}
		if p == "LICENSE" && f.size > maxLICENSE {
			bad(fmt.Sprintf("LICENSE file too large (max size is %d bytes)", maxLICENSE))
			continue
		}
		sel.valid = append(sel.valid, f)
	}
	return sel
}

// writeZip writes files into a zip under prefix, which ends in a slash.
func writeZip(w io.Writer, prefix string, files []file) error {
	zw := zip.NewWriter(w)
	for _, f := range files {
		fw, err := zw.CreateHeader(&zip.FileHeader{Name: prefix + f.path, Method: zip.Deflate})
		if err != nil {
			return err
		}
		data, err := f.read()
		if err != nil {
			return err
		}
		if _, err := fw.Write(data); err != nil {
			return err
		}
	}
	return zw.Close()
}

var (
	moduleLine = regexp.MustCompile(`(?m)^\s*module\s+("[^"]+"|\S+)`)
	goLine     = regexp.MustCompile(`(?m)^\s*go\s+(\S+)`)
)

// modulePath returns the path of the module directive of a go.mod.
func modulePath(gomod []byte) (string, error) {
	m := moduleLine.FindSubmatch(gomod)
	if m == nil {
		return "", errors.New("no module directive")
	}
	p := string(m[1])
	if strings.HasPrefix(p, `"`) {
		var err error
		if p, err = strconv.Unquote(p); err != nil {
			return "", fmt.Errorf("module directive: %v", err)
		}
	}
	if p == "" {
		return "", errors.New("empty module path")
	}
	return p, nil
}

// goVersion returns the version of the go directive of a go.mod, or "".
func goVersion(gomod []byte) string {
	if m := goLine.FindSubmatch(gomod); m != nil {
		return string(m[1])
	}
	return ""
}

var semver = regexp.MustCompile(`^v(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?$`)

// checkVersion reports a version that is not canonical semver or does not
// fit the module path's major version suffix (/vN for N >= 2).
func checkVersion(modPath, version string) error {
	m := semver.FindStringSubmatch(version)
	if m == nil {
		return fmt.Errorf("version %q is not of the form vX.Y.Z", version)
	}
	want := "0 or 1"
	major := m[1]
	ok := major == "0" || major == "1"
	if i := strings.LastIndex(modPath, "/v"); i >= 0 {
		if n, err := strconv.Atoi(modPath[i+2:]); err == nil && n >= 2 && strconv.Itoa(n) == modPath[i+2:] {
			want = modPath[i+2:]
			ok = major == want
		}
	}
	if !ok {
		return fmt.Errorf("version %s does not fit module %s (major version must be %s)", version, modPath, want)
	}
	return nil
}

// escapePath is golang.org/x/mod/module.EscapePath: an upper-case letter
// becomes '!' and its lower-case form, for case-insensitive file systems.
func escapePath(s string) (string, error) {
	var b strings.Builder
	for _, r := range s {
		if r == '!' || r >= utf8.RuneSelf {
			return "", fmt.Errorf("%q: invalid character %q in a module path or version", s, r)
		}
		if 'A' <= r && r <= 'Z' {
			b.WriteByte('!')
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String(), nil
}

func isVCSPath(p string) bool {
	for _, elem := range strings.Split(p, "/") {
		switch elem {
		case ".bzr", ".git", ".hg", ".svn":
			return true
		}
	}
	return false
}

// isVendoredPackage is golang.org/x/mod/zip's rule for files left out as
// vendored: a file in a package below a vendor directory, and from go 1.24 on
// vendor/modules.txt as well.
func isVendoredPackage(name, goVers string) bool {
	go124 := goAtLeast(goVers, 1, 24)
	if go124 && name == "vendor/modules.txt" {
		return true
	}
	var i int
	if strings.HasPrefix(name, "vendor/") {
		i += len("vendor/")
	} else if j := strings.Index(name, "/vendor/"); j >= 0 {
		if go124 {
			i = j + len("/vendor/")
		} else {
			i += len("/vendor/") // the pre-1.24 offset, kept for their checksums
		}
	} else {
		return false
	}
	return strings.Contains(name[i:], "/")
}

// goAtLeast reports whether a go directive's version ("1.25.0") is at least
// major.minor.
func goAtLeast(v string, major, minor int) bool {
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		return false
	}
	ma, err1 := strconv.Atoi(parts[0])
	mi, err2 := strconv.Atoi(strings.TrimRightFunc(parts[1], func(r rune) bool { return !unicode.IsDigit(r) }))
	if err1 != nil || err2 != nil {
		return false
	}
	return ma > major || ma == major && mi >= minor
}

// checkFilePath is golang.org/x/mod/module.CheckFilePath: the names the go
// command accepts in a module zip.
func checkFilePath(p string) error {
	if !utf8.ValidString(p) {
		return errors.New("malformed file path: invalid UTF-8")
	}
	if p == "" {
		return errors.New("malformed file path: empty string")
	}
	if strings.Contains(p, "//") || strings.HasSuffix(p, "/") {
		return errors.New("malformed file path: double or trailing slash")
	}
	for _, elem := range strings.Split(p, "/") {
		if err := checkElem(elem); err != nil {
			return fmt.Errorf("malformed file path %q: %v", p, err)
		}
	}
	return nil
}

var badWindowsNames = []string{
	"CON", "PRN", "AUX", "NUL",
	"COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8", "COM9",
	"LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9",
}

func checkElem(elem string) error {
	if elem == "" {
		return errors.New("empty path element")
	}
	if strings.Count(elem, ".") == len(elem) {
		return fmt.Errorf("invalid path element %q", elem)
	}
	if strings.HasSuffix(elem, ".") {
		return errors.New("trailing dot in path element")
	}
	for _, r := range elem {
		if !fileNameOK(r) {
			return fmt.Errorf("invalid char %q", r)
		}
	}
	short, _, _ := strings.Cut(elem, ".")
	for _, bad := range badWindowsNames {
		if strings.EqualFold(bad, short) {
			return fmt.Errorf("%q disallowed as path element component on Windows", short)
		}
	}
	return nil
}

func fileNameOK(r rune) bool {
	if r < utf8.RuneSelf {
		const allowed = "!#$%&()+,-.=@[]^_{}~ "
		if '0' <= r && r <= '9' || 'A' <= r && r <= 'Z' || 'a' <= r && r <= 'z' {
			return true
		}
		return strings.ContainsRune(allowed, r)
	}
	return unicode.IsLetter(r)
}

// collisionChecker finds case-insensitive name collisions and paths that are
// both a file and a directory, which a module zip must not have.
type collisionChecker map[string]pathInfo

type pathInfo struct {
	path  string
	isDir bool
}

func (cc collisionChecker) check(p string, isDir bool) error {
	fold := strToFold(p)
	if other, ok := cc[fold]; ok {
		if p != other.path {
			return fmt.Errorf("case-insensitive file name collision: %q and %q", other.path, p)
		}
		if isDir != other.isDir {
			return fmt.Errorf("entry %q is both a file and a directory", p)
		}
		if !isDir {
			return fmt.Errorf("multiple entries for file %q", p)
		}
	} else {
		cc[fold] = pathInfo{path: p, isDir: isDir}
	}
	if parent := path.Dir(p); parent != "." {
		return cc.check(parent, true)
	}
	return nil
}

// strToFold maps every rune to the smallest rune of its case-folding orbit.
func strToFold(s string) string {
	var b strings.Builder
	for _, r := range s {
		for {
			r0 := r
			r = unicode.SimpleFold(r0)
			if r <= r0 {
				break
			}
		}
		b.WriteRune(r)
	}
	return b.String()
}
