#!/usr/bin/env bash
# Proves that a module outside the repository resolves the core, every adapter
# and the fleet store (cache/redis) at the version in scripts/VERSION with no
# replace of its own, the way a user's `go get` will once the tags of
# RELEASING.md are pushed.
#
# scripts/modproxy publishes the core and each module under adapters/ and
# cache/ at that version into a file-based module proxy (GOPROXY=file://), in
# the module zip format: the files git tracks, nested modules left out, go.mod
# verbatim (its replace directives included: consumers ignore them). Then, for
# each of those modules, a new module in a temporary directory imports the core
# and the module, runs `go get MODULE@VERSION` through that proxy (which must
# bring in the core at VERSION) and `go get CORE@VERSION`, builds, and must show
# both at VERSION, downloaded from the proxy, with no replace and the go
# directive unchanged.
#
# Third-party modules come from the machine's module cache, served as a second
# file proxy, so no network is needed once it is warm, and otherwise from the
# usual GOPROXY. They are verified against the go.sum lines of the core and the
# module, so no checksum database is needed either; the repository's own
# modules are in none before the release (GONOSUMDB). A temporary GOMODCACHE
# keeps a copy of the repository's modules from an earlier run from being
# reused, and leaves the machine's module cache untouched.
#
# The modules are taken from the working tree: tracked files as they are now,
# untracked ones left out, as a tag leaves them out. CHECK_INSTALL_REV=HEAD (or
# another revision) takes them from that commit instead, as its tag would.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

version=$(tr -d '[:space:]' < scripts/VERSION)
rev=${CHECK_INSTALL_REV:-}
core=github.com/tokenguard/tokenguard
godirective=$(awk '$1 == "go" {print $2; exit}' go.mod)
start=$SECONDS

fail() {
  echo "check-install: FAIL: $*" >&2
  if [ -z "$rev" ]; then
    local untracked
    untracked=$(git -C "$root" ls-files --others --exclude-standard -- "${dirs[@]}" | grep -E '\.go$|(^|/)go\.(mod|sum)$' || true)
    if [ -n "$untracked" ]; then
      echo "check-install: these files are not tracked by git, so they are in no module zip (git add them, or run with CHECK_INSTALL_REV=HEAD to check the last commit):" >&2
      while IFS= read -r f; do echo "  $f"; done <<< "$untracked" >&2
    fi
  fi
  exit 1
}

# The modules users import: the core, every adapter, the shared stores of
# cache/ (cache/redis), and the OpenTelemetry module (otel).
dirs=(.)
for gomod in adapters/*/go.mod cache/*/go.mod otel/go.mod; do
  [ -f "$gomod" ] || continue
  dirs+=("$(dirname "$gomod")")
done
mods=()
for dir in "${dirs[@]}"; do
  mods+=("$(awk '$1 == "module" {gsub(/"/, "", $2); print $2; exit}' "$dir/go.mod")")
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/check-install.XXXXXX")
cleanup() { chmod -R u+w "$tmp" 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT

# 1. The proxy, at the version being released.
proxy=$tmp/proxy
(cd scripts/modproxy && GOWORK=off go run . -out "$proxy" -version "$version" ${rev:+-rev "$rev"} "${dirs[@]/#/$root/}") \
  > "$tmp/modproxy.log" 2>&1 || { cat "$tmp/modproxy.log" >&2; fail "scripts/modproxy could not write the module proxy (see above)"; }

# 2. For each adapter and store, a module outside the repository, as a user
# writes one: it imports the core and the module and uses an exported name of
# each (chi's adapter has none: it is documentation and tests). One module per
# adapter or store, as users pick one: a module importing several selects
# versions that none of the repository's modules builds with (echo/v5 requires
# a newer golang.org/x/net than the echo adapter's), which only the network has.
declare -A uses=([adapters/gin]=New [adapters/echo]=New [adapters/echo5]=New [adapters/fiber]=New [adapters/grpc]=UnaryServerInterceptor [adapters/mcp]=Middleware [cache/redis]=New [otel]=New)
gomodcache=$(go env GOMODCACHE)
fallback=$(go env GOPROXY)
export GOWORK=off GOFLAGS=-modcacherw GOMODCACHE="$tmp/modcache"
export GOPROXY="file://$proxy,file://$gomodcache/cache/download,$fallback"
export GOPRIVATE='' GONOPROXY='' GONOSUMDB="$core"

for i in "${!dirs[@]}"; do
  dir=${dirs[$i]} mod=${mods[$i]}
  [ "$dir" != . ] || continue
  out=$tmp/outside-${dir##*/}
  mkdir "$out"
  cd "$out"
  name=${uses[$dir]:-}
  {
    echo "// Written by scripts/check-install.sh: the core and one of its modules, imported as a user would."
    echo "package main"
    echo
    echo "import ("
    echo "	\"$core\""
    if [ -n "$name" ]; then echo "	adapter \"$mod\""; else echo "	_ \"$mod\""; fi
    echo ")"
    echo
    echo "func main() {"
    echo "	_ = tokenguard.New"
    if [ -n "$name" ]; then echo "	_ = adapter.$name"; fi
    echo "}"
  } > main.go
  go mod init "example.com/outside/${dir##*/}" > /dev/null 2>&1
  # The oldest Go release the modules support (the core's go directive, which
  # scripts/test.sh holds every module to): go get must not need a newer one.
  go mod edit -go="$godirective"
  # Third-party hashes as the core and the module recorded them, so that no
  # checksum database is needed; the repository's own modules are not in it.
  cat "$root/go.sum" "$root/$dir/go.sum" | sort -u > go.sum

  # The command of RELEASING.md: the module alone must bring in the core at
  # the version.
  go get "$mod@$version" > get.log 2>&1 || { cat get.log >&2; fail "go get $mod@$version did not resolve"; }
  got=$(go list -m -f '{{.Version}}' "$core" 2>&1) || { echo "$got" >&2; fail "$mod@$version requires a $core that does not resolve"; }
  [ "$got" = "$version" ] || fail "go get $mod@$version resolved $core at $got, want $version"
  # The user's code imports the core too, so it is theirs to get (a module
  # whose package does not import the core, as chi's adapter, leaves its go.mod
  # checksum out of go.sum).
  go get "$core@$version" > get.log 2>&1 || { cat get.log >&2; fail "go get $core@$version did not resolve"; }
  # -trimpath: the module cache is new on every run, and without it every
  # package built from it would be compiled anew instead of coming from the
  # build cache.
  go build -trimpath -o /dev/null . > build.log 2>&1 || { cat build.log >&2; fail "a module importing $core and $mod at $version does not build"; }

  # 3. The core and the module at the version, downloaded from the proxy, and
  # no replace.
  if grep -qE '^[[:space:]]*replace([[:space:]]|\()' go.mod; then
    fail "the outside go.mod for $mod has a replace"
  fi
  got=$(awk '$1 == "go" {print $2; exit}' go.mod)
  if [ "$got" != "$godirective" ]; then
    fail "go get $mod@$version raised the outside module's go directive from $godirective to $got: a dependency needs a newer Go"
  fi
  # By name: `go list -m all` needs the go.mod of every module in the full
  # graph, which the module cache does not all have (the network does).
  go list -m -f '{{.Path}} {{.Version}} {{if .Replace}}replaced{{else}}{{.Dir}}{{end}}' "$core" "$mod" > modules.txt 2>&1 \
    || { cat modules.txt >&2; fail "go list -m $core $mod failed"; }
  for want in "$core" "$mod"; do
    line=$(awk -v m="$want" '$1 == m' modules.txt)
    [ -n "$line" ] || fail "$want is not in the build list of a module that imports $mod"
    read -r _ got moddir <<< "$line"
    [ "$got" = "$version" ] || fail "$want resolved to $got, want $version (importing $mod)"
    [ "$moddir" = "$GOMODCACHE/$want@$version" ] || fail "$want@$version was not downloaded from the proxy (module directory: $moddir)"
  done
done

children=("${mods[@]:1}")
echo "check-install: modules outside the repository resolve $core and its ${#children[@]} modules (${children[*]#"$core/"}) at $version, from ${rev:-the working tree}, with no replace, and build ($((SECONDS - start))s)"
