# Shared by the scripts that build third-party Go tools from the module proxy into the cache
# (scripts/build-controlplane, scripts/build-e2e). Sourced, not run: the caller defines log and
# die and sets `cache` (the cache root) first.

# go_toolchain <need> <what>: the Go toolchain ($GO, else go on PATH, else /usr/local/go/bin/go)
# in go_bin and its version in have_go; dies unless it is at least <need>, which <what> asks for.
# Checked up front: GOTOOLCHAIN=local (go_build_env) forbids fetching a newer one, and a compile
# error 20 minutes in would say less.
go_toolchain() {
  local need=$1 what=$2
  go_bin=${GO:-}
  if [[ -z $go_bin ]]; then
    go_bin=$(command -v go || true)
    [[ -n $go_bin ]] || go_bin=/usr/local/go/bin/go
  fi
  [[ -x $go_bin ]] || die "no Go toolchain (looked for \$GO, go on PATH, /usr/local/go/bin/go); $what needs Go >= $need"
  have_go=$("$go_bin" env GOVERSION | sed 's/^go//')
  if [[ $(printf '%s\n%s\n' "$need" "$have_go" | sort -V | head -1) != "$need" ]]; then
    die "$go_bin is Go $have_go; $what needs Go >= $need"
  fi
}

# go_build_env: module and build caches under $cache (shared by every build, and by CI's fresh
# clones), the wrapper modules' go.sum as the only source of versions, no toolchain download.
go_build_env() {
  export GOTOOLCHAIN=local GOWORK=off CGO_ENABLED=0
  export GOPATH=$cache/go GOMODCACHE=$cache/go/pkg/mod GOCACHE=$cache/go-build
  export GOFLAGS="-mod=readonly -buildvcs=false"
}

# take_build_lock: one build into $cache/k8s-bin at a time (a developer and CI on one machine
# would race on the same outputs and the shared GOCACHE); a second waits, then finds them built.
take_build_lock() {
  mkdir -p "$cache/k8s-bin"
  exec 9>"$cache/k8s-bin/.lock"
  if ! flock -n 9; then
    log "another build holds $cache/k8s-bin/.lock; waiting"
    flock 9
  fi
}

# k8s_version_ldflags <version>: -s -w and the version -X flags as hack/lib/version.sh sets them
# (without them /version reports v0.0.0-master and kubectl warns about version skew). The proxy's
# .info has no commit hash, so gitCommit stays unset; the date is fixed so that a rebuild is
# byte-identical.
k8s_version_ldflags() {
  local version=$1 minor ld="-s -w" p
  minor=${version#v1.}
  minor=${minor%%.*}
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=" -X $p.gitVersion=$version -X $p.gitMajor=1 -X $p.gitMinor=$minor"
    ld+=" -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
  done
  printf '%s' "$ld"
}

# go_build_into <wrapper> <out> <nice> <go command> <package> [go flags...]: runs
# `go <command> <flags> -o <temp> <package>` in the wrapper module at that niceness and renames
# the result to <out>, so an interrupted build never leaves a file that looks complete.
go_build_into() {
  local wrapper=$1 out=$2 niceness=$3 cmd=$4 pkg=$5
  shift 5
  mkdir -p "$(dirname "$out")"
  local tmp start=$SECONDS
  tmp="$(dirname "$out")/.$(basename "$out").tmp.$$"
  log "building $out: (cd $wrapper && go $cmd $* -o $out $pkg)"
  (cd "$wrapper" && nice -n "$niceness" "$go_bin" "$cmd" "$@" -o "$tmp" "$pkg") || {
    rm -f "$tmp"
    die "go $cmd of $pkg failed (GOCACHE=$GOCACHE keeps the finished parts; rerun to continue)"
  }
  mv -f "$tmp" "$out"
  log "built $out in $((SECONDS - start)) s ($(du -h "$out" | cut -f1))"
}
