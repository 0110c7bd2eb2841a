# shellcheck shell=bash
# Go binaries the kind cluster needs beyond test/cluster's: kind itself, kubeadm
# (kind drives every node with it) and CoreDNS (kubeadm's cluster DNS addon).
# Same rules as test/cluster/lib/build.sh: pinned versions, built once into $BIN_ROOT.

KIND_VERSION=v0.31.0       # last kind whose node images support cgroup v1 hosts like ours (see NOTES.md §5)
COREDNS_VERSION=v1.12.0    # = kubeadm v1.33's CoreDNS image tag
KIND_BIN=$BIN_ROOT/kind-$KIND_VERSION
KUBEADM_BIN=$BIN_ROOT/kubeadm-$KUBERNETES_VERSION
COREDNS_BIN=$BIN_ROOT/coredns-$COREDNS_VERSION

build_kind() {
  local out=$1
  ( go get "sigs.k8s.io/kind@$KIND_VERSION" &&
    CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$out/kind" sigs.k8s.io/kind )
}

# kubeadm from the same module as the other Kubernetes binaries (same replaces, same version stamp)
build_kubeadm() {
  local out=$1 v=$KUBERNETES_VERSION
  (
    printf 'godebug default=go1.24\n' >> go.mod
    local gomod staging="v0${v#v1}" mod
    gomod=$(go mod download -json "k8s.io/kubernetes@$v" | jq -r .GoMod) || exit 1
    for mod in $(awk '$2=="=>" && $3 ~ /^\.\/staging\// {print $1}' "$gomod"); do
      go mod edit -replace="$mod=$mod@$staging"
    done
    go get "k8s.io/kubernetes/cmd/kubeadm@$v" || exit 1
    local ld="-s -w" p minor=${v#v1.}; minor=${minor%%.*}
    for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
      ld+=" -X $p.gitVersion=$v -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
    done
    CGO_ENABLED=0 go build -trimpath -tags selinux,notest -ldflags "$ld" -o "$out/kubeadm" k8s.io/kubernetes/cmd/kubeadm
  )
}

build_coredns() {
  local out=$1
  ( go get "github.com/coredns/coredns@$COREDNS_VERSION" &&
    CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$out/coredns" github.com/coredns/coredns )
}

build_kind_parts() {
  rm -rf "$BIN_ROOT"/.tmp-* "$KCE_HOME"/go/work.*
  cached "$KIND_BIN" build_kind
  cached "$KUBEADM_BIN" build_kubeadm
  cached "$COREDNS_BIN" build_coredns
}
