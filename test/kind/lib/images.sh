# shellcheck shell=bash
# The kind node image, assembled the way kind's images/base/Dockerfile and pkg/build/nodeimage describe
# (NOTES.md §1–2, §7) but from local parts: a Debian rootfs from mmdebstrap, kind's own entrypoint and
# systemd units from the kind module, Debian's containerd, our static runc, the Kubernetes binaries we
# compile, and every image kubeadm and kind need preloaded into containerd (nothing is ever pulled).

KIND_NODE_REV=1   # bump when anything below changes what ends up in the node image
KIND_HOME=$KCE_HOME/kind
KIND_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
KIND_SRC=$GOMODCACHE/sigs.k8s.io/kind@$KIND_VERSION
KIND_NODE_PACKAGES=(systemd conntrack iptables nftables iproute2 ethtool util-linux mount kmod libseccomp2 pigz
  bash ca-certificates curl jq procps containerd containernetworking-plugins)
KIND_NET_PACKAGES=(iptables conntrack iproute2 curl jq ca-certificates procps)
# as for test/cluster's debian-python image: minbase, root-owned, no docs/man/locales, no resolv.conf/hostname
KIND_MMDEBSTRAP_OPTS=("${DEBIAN_PYTHON_OPTS[@]}")

# the node image's tag: a hash of everything that goes into it
kind_node_tag() {
  local h
  h=$( { printf '%s\n' "$KIND_NODE_REV" "$KIND_VERSION" "$KUBERNETES_VERSION" "$ETCD_VERSION" "$COREDNS_VERSION" \
      "$PAUSE_TAG" "$RUNC_VERSION" "${KIND_NODE_PACKAGES[@]}" "${KIND_NET_PACKAGES[@]}" "${KIND_MMDEBSTRAP_OPTS[@]}"
    cat "${BASH_SOURCE[0]}" "$KIND_DIR"/node/*; } | sha256sum | cut -c1-8)
  echo "$KUBERNETES_VERSION-$h"
}
KIND_NODE_IMAGE_NAME=kce.local/kind-node

# docker_archive <out.tar> <rootfs dir> <image config JSON> <tag...>: a one-layer image in `docker save`
# format, which both `docker load` and `ctr images import` read.
docker_archive() {
  local out=$1 rootfs=$2 config=$3; shift 3
  local t; t=$(mktemp -d "$KIND_HOME/.tmp.XXXX")
  mkdir -p "$t/layer"
  tar --numeric-owner --xattrs -C "$rootfs" -cf "$t/layer/layer.tar" . || { rm -rf "$t"; die "tar of $rootfs failed"; }
  local diff; diff=sha256:$(sha256sum "$t/layer/layer.tar" | cut -d' ' -f1)
  jq -n --arg diff "$diff" --argjson config "$config" \
    '{architecture: "amd64", os: "linux", config: $config, rootfs: {type: "layers", diff_ids: [$diff]},
      history: [{created_by: "kube-container-engine test/kind"}]}' > "$t/config.json"
  local cid; cid=$(sha256sum "$t/config.json" | cut -d' ' -f1)
  mv "$t/config.json" "$t/$cid.json"
  jq -n --arg c "$cid.json" '[{Config: $c, RepoTags: $ARGS.positional, Layers: ["layer/layer.tar"]}]' \
    --args "$@" > "$t/manifest.json"
  tar -C "$t" -cf "$out.tmp" manifest.json "$cid.json" layer && mv "$out.tmp" "$out"
  rm -rf "$t"
}

kind_mmdebstrap() { # <rootfs dir> <log> <packages...>
  local r=$1 blog=$2; shift 2
  local include; include=$(IFS=,; echo "$*")
  mmdebstrap "${KIND_MMDEBSTRAP_OPTS[@]}" --include="$include" bookworm "$r" "${DEBIAN_PYTHON_SOURCES[@]}" > "$blog" 2>&1 ||
    { printf '[kce] ---- last lines of %s ----\n' "$blog" >&2; tail -n 40 "$blog" >&2; die "mmdebstrap failed"; }
  find "$r/dev" -mindepth 1 -delete
}

# control-plane images: busybox + one static binary, under the names kubeadm asks for
kind_binary_image() { # <out.tar> <ref> <binary> <path in image> [entrypoint]
  local out=$1 ref=$2 bin=$3 path=$4 entry=${5:-}
  local r; r=$(mktemp -d "$KIND_HOME/.tmp.XXXX")
  busybox_rootfs "$r"
  install -D -m 755 "$bin" "$r$path"
  mkdir -p "$r/etc/ssl/certs" && cp /etc/ssl/certs/ca-certificates.crt "$r/etc/ssl/certs/"
  local cfg='{"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]}'
  [[ -n $entry ]] && cfg=$(jq -c --arg e "$entry" '. + {Entrypoint: [$e]}' <<<"$cfg")
  docker_archive "$out" "$r" "$cfg" "$ref"
  rm -rf "$r"
}

# every image the nodes run, as docker-archives in <dir>
kind_preload_archives() { # <dir>
  local d=$1 v=$KUBERNETES_VERSION c
  for c in kube-apiserver kube-controller-manager kube-scheduler; do
    kind_binary_image "$d/$c.tar" "registry.k8s.io/$c:$v" "$K8S_BIN/$c" "/usr/local/bin/$c"
  done
  # kubeadm v1.33 asks for etcd 3.5.24-0 (constants.SupportedEtcdVersion[33]); test/cluster builds that version
  kind_binary_image "$d/etcd.tar" "registry.k8s.io/etcd:${ETCD_VERSION#v}-0" "$ETCD_BIN/etcd" /usr/local/bin/etcd
  kind_binary_image "$d/coredns.tar" "registry.k8s.io/coredns/coredns:$COREDNS_VERSION" "$COREDNS_BIN/coredns" /coredns /coredns
  cp "$IMAGE_ROOT/pause-$PAUSE_TAG.tar" "$d/pause.tar"
  # kube-proxy needs iptables and conntrack; kind-net (our CNI, node/kind-net) needs iproute2, curl and jq:
  # one Debian rootfs, one image under both names
  local r; r=$(mktemp -d "$KIND_HOME/.tmp.XXXX")
  kind_mmdebstrap "$r" "$KCE_HOME/build-logs/kind-net-rootfs.log" "${KIND_NET_PACKAGES[@]}"
  install -m 755 "$K8S_BIN/kube-proxy" "$r/usr/local/bin/kube-proxy"
  install -m 755 "$KIND_DIR/node/kind-net" "$r/usr/local/bin/kind-net"
  docker_archive "$d/kind-net.tar" "$r" '{"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]}' \
    "registry.k8s.io/kube-proxy:$v" "kce.local/kind-net:$(kind_node_tag)"
  rm -rf "$r"
}

# import docker-archives into <rootfs>/var/lib/containerd's k8s.io namespace with a throw-away containerd
# (same version as the node's: Debian's), unpacked later by the node's CRI plugin when first used
kind_preload() { # <rootfs> <archive dir>
  local rootfs=$1 d=$2 s; s=$(mktemp -d /tmp/kce-preload.XXXX)
  printf 'version = 2\ndisabled_plugins = ["io.containerd.grpc.v1.cri"]\n' > "$s/config.toml"
  containerd --config "$s/config.toml" --root "$rootfs/var/lib/containerd" --state "$s/state" \
    --address "$s/c.sock" > "$s/containerd.log" 2>&1 &
  local pid=$!
  wait_until 30 ctr -a "$s/c.sock" version || { kill "$pid"; cat "$s/containerd.log" >&2; die "preload containerd did not start"; }
  local a ok=1
  for a in "$d"/*.tar; do
    ctr -a "$s/c.sock" -n k8s.io images import --all-platforms --no-unpack --digests "$a" >&2 || { ok=0; break; }
  done
  kill "$pid"; wait "$pid" 2>/dev/null || true
  rm -rf "$s"
  [[ $ok == 1 ]] || die "importing $a into the node image failed"
}

kind_node_rootfs() { # <rootfs>
  local r=$1 K=$KIND_SRC/images/base/files
  kind_mmdebstrap "$r" "$KCE_HOME/build-logs/kind-node-rootfs.log" "${KIND_NODE_PACKAGES[@]}"
  # kind's files (images/base/Dockerfile's COPY lines), then its clean-up of units a container must not run
  install -m 755 "$K"/usr/local/bin/* "$r/usr/local/bin/"
  mkdir -p "$r/kind/bin" "$r/kind/manifests" "$r/LICENSES" "$r/etc/systemd/system/kubelet.service.d"
  install -m 644 "$K/kind/README.txt" "$r/kind/"; install -m 755 "$K"/kind/bin/* "$r/kind/bin/"
  install -m 644 "$K"/LICENSES/* "$r/LICENSES/"; install -m 644 "$K/etc/crictl.yaml" "$r/etc/"
  install -m 644 "$K"/etc/containerd/* "$r/etc/containerd/"; install -m 644 "$K"/etc/default/* "$r/etc/default/"
  install -m 644 "$K"/etc/sysctl.d/* "$r/etc/sysctl.d/"
  find "$K/etc/systemd/system" -maxdepth 1 -type f -exec install -m 644 -t "$r/etc/systemd/system/" {} +
  install -m 644 "$K"/etc/systemd/system/kubelet.service.d/* "$r/etc/systemd/system/kubelet.service.d/"
  find "$r/lib/systemd/system/sysinit.target.wants/" -name systemd-tmpfiles-setup.service -delete
  rm -f "$r"/lib/systemd/system/multi-user.target.wants/* "$r"/etc/systemd/system/*.wants/* \
    "$r"/lib/systemd/system/local-fs.target.wants/* "$r"/lib/systemd/system/sockets.target.wants/*udev* \
    "$r"/lib/systemd/system/sockets.target.wants/*initctl* "$r"/lib/systemd/system/basic.target.wants/*
  echo "ReadKMsg=no" >> "$r/etc/systemd/journald.conf"
  ln -sf /lib/systemd/systemd "$r/sbin/init"
  # Debian's containerd is /usr/bin/containerd; runc v1.3.6 (ours, static) where kind puts its own
  sed -i 's|^ExecStart=/usr/local/bin/containerd|ExecStart=/usr/bin/containerd|' "$r/etc/systemd/system/containerd.service"
  install -D -m 755 "$RUNC_BIN/runc" "$r/usr/local/sbin/runc"
  # containerd's settings for this host: no CAP_SYS_RESOURCE (the CRI plugin must not ask for negative
  # oom_score_adj), no fuse-overlayfs proxy plugin, registries configured by hosts.toml (kind's recipe)
  sed -i -e 's/restrict_oom_score_adj = false/restrict_oom_score_adj = true/' \
    -e '/^\[proxy_plugins\]/,/^  address = /d' -e '/^# fuse-overlayfs is used for rootless/d' "$r/etc/containerd/config.toml"
  printf '[plugins."io.containerd.grpc.v1.cri".registry]\n  config_path = "/etc/containerd/certs.d"\n' >> "$r/etc/containerd/config.toml"
  mkdir -p "$r/etc/containerd/certs.d" "$r/opt/cni/bin"
  grep -q 'restrict_oom_score_adj = true' "$r/etc/containerd/config.toml" || die "node config.toml: restrict_oom_score_adj not set"
  ctr oci spec | jq '.hooks.createContainer[.hooks.createContainer | length] |= . + {"path": "/kind/bin/mount-product-files.sh"}' |
    jq 'del(.process.rlimits)' > "$r/etc/containerd/cri-base.json"
  local p
  for p in host-local loopback ptp portmap; do ln -sf "/usr/lib/cni/$p" "$r/opt/cni/bin/$p"; done
  chroot "$r" systemctl enable kubelet.service containerd.service undo-mount-hacks.service >&2
  chroot "$r" systemctl mask systemd-binfmt.service >&2
  mkdir -p "$r/etc/kubernetes/manifests"
  # what pkg/build/nodeimage adds
  install -m 755 "$KUBEADM_BIN/kubeadm" "$K8S_BIN/kubelet" "$K8S_BIN/kubectl" "$r/usr/bin/"
  printf '%s' "$KUBERNETES_VERSION" > "$r/kind/version"
  sed "s|KIND_NET_TAG|$(kind_node_tag)|" "$KIND_DIR/node/default-cni.yaml" > "$r/kind/manifests/default-cni.yaml"
}

# the node image's docker-archive, cached by tag
kind_node_archive() { echo "$KIND_HOME/images/kind-node-$(kind_node_tag).tar"; }
build_kind_node_image() {
  local out; out=$(kind_node_archive)
  [[ -f $out ]] && { log "cached: ${out#"$KCE_HOME"/}"; return 0; }
  mkdir -p "$KIND_HOME/images"; rm -rf "$KIND_HOME"/.tmp.*
  local t=$SECONDS r; r=$(mktemp -d "$KIND_HOME/.tmp.XXXX")
  log "building the kind node image $KIND_NODE_IMAGE_NAME:$(kind_node_tag) ..."
  # kind's files come from its module (normally already there from building kind)
  [[ -d $KIND_SRC/images/base/files ]] || go mod download "sigs.k8s.io/kind@$KIND_VERSION" ||
    die "cannot download the kind module $KIND_VERSION"
  mkdir -p "$r/archives"
  kind_preload_archives "$r/archives"
  kind_node_rootfs "$r/rootfs"
  kind_preload "$r/rootfs" "$r/archives"
  docker_archive "$out" "$r/rootfs" "$(jq -nc '{Entrypoint: ["/usr/local/bin/entrypoint", "/sbin/init"],
      Env: ["container=docker", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
      StopSignal: "SIGRTMIN+3"}')" "$KIND_NODE_IMAGE_NAME:$(kind_node_tag)"
  rm -rf "$r"
  log "built ${out#"$KCE_HOME"/} ($(du -m "$out" | cut -f1) MiB) in $(( SECONDS - t ))s"
}
