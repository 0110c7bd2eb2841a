# shellcheck shell=bash
# Build every binary from the Go module proxy, once per version, into $BIN_ROOT.
#
# `go install module/cmd@version` does not work here: the proxy refuses the
# `@v/list` request go install makes for its deprecation check. So each tool is
# built from a throw-away local module that `require`s it at the pinned version.

# cached <final-dir> <builder-fn>: unless final-dir exists, run
#   builder-fn <temp output dir> <fresh local Go module dir>
# in a subshell, then rename temp -> final in one step. An interrupted build
# leaves only .tmp-*/work.* dirs (removed next time), never a half-filled final dir.
cached() {
  local final=$1 fn=$2
  if [[ -d $final ]]; then log "cached: ${final#"$KCE_HOME"/}"; return 0; fi
  mkdir -p "$BIN_ROOT" "$KCE_HOME/go"
  local tmp mod t=$SECONDS
  tmp=$(mktemp -d "$BIN_ROOT/.tmp-$(basename "$final").XXXX") || die "mktemp failed"
  mod=$(mktemp -d "$KCE_HOME/go/work.XXXX") || die "mktemp failed"
  printf 'module local/x\n\ngo 1.24.0\n' > "$mod/go.mod"
  # the go tool's output (thousands of "go: downloading" lines) goes to a log; shown on failure
  local blog=$KCE_HOME/build-logs/$(basename "$final").log
  mkdir -p "$KCE_HOME/build-logs"
  log "building ${final#"$KCE_HOME"/} ... (log: ${blog#"$KCE_HOME"/})"
  if ! ( cd "$mod" && "$fn" "$tmp" "$mod" ) > "$blog" 2>&1; then
    rm -rf "$tmp" "$mod"
    printf '[kce] ---- last lines of %s ----\n' "$blog" >&2; tail -n 40 "$blog" >&2
    die "build of $(basename "$final") failed"
  fi
  rm -rf "$mod"
  chmod 755 "$tmp"
  mv -T "$tmp" "$final"
  log "built ${final#"$KCE_HOME"/} in $(( SECONDS - t ))s"
}

# Kubernetes: apiserver, controller-manager, scheduler, kubelet, kube-proxy, kubectl
# in one `go build` (~4.5 min on 2 cores, the bulk of a cold up).
build_kubernetes() {
  local out=$1 v=$KUBERNETES_VERSION
  (
    printf 'godebug default=go1.24\n' >> go.mod
    # k8s.io/kubernetes replaces its staging modules with ./staging/...; a module
    # that requires it must pin each of them to the published v0.X.Y instead.
    local gomod staging="v0${v#v1}"
    gomod=$(go mod download -json "k8s.io/kubernetes@$v" | jq -r .GoMod) || exit 1
    local mod
    for mod in $(awk '$2=="=>" && $3 ~ /^\.\/staging\// {print $1}' "$gomod"); do
      go mod edit -replace="$mod=$mod@$staging"
    done
    go mod edit -require="k8s.io/kubernetes@$v"
    local cmds=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl) pkgs=() c
    for c in "${cmds[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$c"); done
    go get "${pkgs[@]/%/@$v}" || exit 1
    # stamp the version, or nodes report v0.0.0-master
    local ld="-s -w" p minor=${v#v1.}; minor=${minor%%.*}
    for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
      ld+=" -X $p.gitVersion=$v -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
      ld+=" -X $p.buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    done
    CGO_ENABLED=0 go build -trimpath -tags selinux,notest -ldflags "$ld" -o "$out/" "${pkgs[@]}" || exit 1
    # pause.c ships in the same module; keep it for build_pause
    cp "$(go list -m -f '{{.Dir}}' k8s.io/kubernetes)/build/pause/linux/pause.c" "$out/pause.c"
  )
}

build_etcd() {
  local out=$1
  ( go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" &&
    CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$out/etcd" go.etcd.io/etcd/server/v3 )
}

build_kaniko() {
  local out=$1
  ( go get "github.com/chainguard-dev/kaniko/cmd/executor@$KANIKO_VERSION" &&
    CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w -X github.com/chainguard-dev/kaniko/pkg/version.version=$KANIKO_VERSION" \
      -o "$out/executor" github.com/chainguard-dev/kaniko/cmd/executor )
}

build_buildkit() {
  local out=$1
  (
    local gomod; gomod=$(go mod download -json "github.com/moby/buildkit@$BUILDKIT_VERSION" | jq -r .GoMod) || exit 1
    # buildkit's go.mod excludes some versions; without the same excludes MVS picks them
    sed -n '/^exclude (/,/^)/p' "$gomod" >> go.mod
    go get "github.com/moby/buildkit/cmd/buildkitd@$BUILDKIT_VERSION" "github.com/moby/buildkit/cmd/buildctl@$BUILDKIT_VERSION" || exit 1
    local ld="-s -w -X github.com/moby/buildkit/version.Version=$BUILDKIT_VERSION"
    CGO_ENABLED=0 go build -trimpath -tags "osusergo netgo static_build seccomp" -ldflags "$ld" -o "$out/" \
      github.com/moby/buildkit/cmd/buildkitd github.com/moby/buildkit/cmd/buildctl || exit 1
    # module cache files are read-only without exec bits: chmod or the pod says
    # "executable file not found"
    install -m 755 "$(go list -m -f '{{.Dir}}' github.com/moby/buildkit)/examples/buildctl-daemonless/buildctl-daemonless.sh" "$out/"
  )
}

# static runc (cgo + libseccomp) for the BuildKit image: the pod has no libc to link against
build_runc() {
  local out=$1
  ( go get "github.com/opencontainers/runc@$RUNC_VERSION" &&
    CGO_ENABLED=1 go build -trimpath -tags "seccomp urfave_cli_no_docs netgo osusergo" \
      -ldflags "-s -w -extldflags -static -X main.version=${RUNC_VERSION#v}" \
      -o "$out/runc" github.com/opencontainers/runc )
}

# rootlesskit (static): buildctl-daemonless.sh starts buildkitd through it when not root
build_rootlesskit() {
  local out=$1 m=github.com/rootless-containers/rootlesskit/v2
  ( go get "$m/cmd/rootlesskit@$ROOTLESSKIT_VERSION" &&
    CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$out/rootlesskit" "$m/cmd/rootlesskit" )
}

# pause: the sandbox ("infra") container's process, a tiny static C program
build_pause() {
  local out=$1
  gcc -Os -static -o "$out/pause" "$K8S_BIN/pause.c" -DVERSION="$PAUSE_TAG" && strip "$out/pause"
}

build_all() {
  rm -rf "$BIN_ROOT"/.tmp-* "$KCE_HOME"/go/work.*     # leftovers of an interrupted build
  mkdir -p "$KCE_HOME/go"
  cached "$K8S_BIN" build_kubernetes
  cached "$ETCD_BIN" build_etcd
  cached "$KANIKO_BIN" build_kaniko
  cached "$BUILDKIT_BIN" build_buildkit
  cached "$RUNC_BIN" build_runc
  cached "$ROOTLESSKIT_BIN" build_rootlesskit
  cached "$PAUSE_BIN" build_pause
}
