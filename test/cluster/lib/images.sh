# shellcheck shell=bash
# Container images assembled from local files with umoci (no registry pulls),
# cached as OCI archives: $IMAGE_ROOT/<name>-<version>.tar. skopeo moves them
# into containerd (pause) or the open registry (everything else).

busybox_version() {   # Debian's busybox-static version as a tag: 1:1.35.0-4+b1 -> 1.35.0-4-b1
  dpkg-query -W -f='${Version}' busybox-static | sed -e 's/^[0-9]*://' -e 's/[^A-Za-z0-9_.-]/-/g'
}

# oci_image <out.tar> <rootfs dir> <umoci config args...>: one-layer image, written atomically
oci_image() {
  local out=$1 rootfs=$2; shift 2
  local tmp; tmp=$(mktemp -d "$IMAGE_ROOT/.tmp.XXXX")
  umoci init --layout "$tmp/oci" &&
    umoci new --image "$tmp/oci:img" &&
    umoci insert --image "$tmp/oci:img" "$rootfs" / &&
    umoci config --image "$tmp/oci:img" --architecture amd64 --os linux --author kce "$@" &&
    umoci gc --layout "$tmp/oci" &&
    tar -C "$tmp/oci" -cf "$tmp/image.tar" . || { rm -rf "$tmp"; die "building image $out failed"; }
  mv "$tmp/image.tar" "$out"
  rm -rf "$tmp"
}

# a minimal busybox userland: /bin/busybox + applet symlinks, passwd/group, /tmp
busybox_rootfs() { # <dir>
  local r=$1 a
  mkdir -p "$r"/{bin,sbin,usr/bin,usr/sbin,etc,tmp,root,home,var,proc,sys,dev}
  chmod 1777 "$r/tmp"
  cp /bin/busybox "$r/bin/busybox"
  for a in $(/bin/busybox --list-full); do
    [[ $a == bin/busybox || -e $r/$a ]] || ln -s /bin/busybox "$r/$a"
  done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n' > "$r/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' > "$r/etc/group"
  printf 'hosts: files dns\n' > "$r/etc/nsswitch.conf"
}

build_image_pause() { # -> docker-archive named registry.k8s.io/pause:$PAUSE_TAG, for `ctr images import`
  local out=$IMAGE_ROOT/pause-$PAUSE_TAG.tar
  [[ -f $out ]] && return 0
  local r; r=$(mktemp -d "$IMAGE_ROOT/.tmp.XXXX")
  mkdir -p "$r/rootfs" && install -m 755 "$PAUSE_BIN/pause" "$r/rootfs/pause"
  oci_image "$r/oci.tar" "$r/rootfs" --config.entrypoint /pause --config.user 65535:65535
  skopeo copy -q "oci-archive:$r/oci.tar:img" "docker-archive:$r/docker.tar:registry.k8s.io/pause:$PAUSE_TAG" >&2 ||
    die "converting pause image failed"
  mv "$r/docker.tar" "$out"; rm -rf "$r"
  log "built images/pause-$PAUSE_TAG.tar"
}

build_image_busybox() {
  local out=$IMAGE_ROOT/busybox-$BUSYBOX_TAG.tar
  [[ -f $out ]] && return 0
  local r; r=$(mktemp -d "$IMAGE_ROOT/.tmp.XXXX")
  busybox_rootfs "$r"
  oci_image "$out" "$r" --config.cmd /bin/sh \
    --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
  rm -rf "$r"; log "built images/busybox-$BUSYBOX_TAG.tar"
}

# mirrors upstream kaniko's deploy/Dockerfile: scratch + executor + CA bundle
build_image_kaniko() {
  local out=$IMAGE_ROOT/kaniko-executor-$KANIKO_VERSION.tar
  [[ -f $out ]] && return 0
  local r; r=$(mktemp -d "$IMAGE_ROOT/.tmp.XXXX")
  mkdir -p "$r"/kaniko/{ssl/certs,.docker} "$r/etc" "$r/workspace"
  install -m 755 "$KANIKO_BIN/executor" "$r/kaniko/executor"
  cp /etc/ssl/certs/ca-certificates.crt "$r/kaniko/ssl/certs/ca-certificates.crt"
  echo '{}' > "$r/kaniko/.docker/config.json"
  printf 'hosts: files dns\n' > "$r/etc/nsswitch.conf"
  chmod 777 "$r/kaniko"
  oci_image "$out" "$r" --config.entrypoint /kaniko/executor --config.workingdir /workspace \
    --config.env HOME=/root --config.env USER=root --config.env PATH=/usr/local/bin:/kaniko \
    --config.env SSL_CERT_DIR=/kaniko/ssl/certs --config.env DOCKER_CONFIG=/kaniko/.docker/
  rm -rf "$r"; log "built images/kaniko-executor-$KANIKO_VERSION.tar"
}

# busybox + buildkitd/buildctl/buildctl-daemonless.sh + static runc, run privileged.
# Its content depends on more than the BuildKit version (runc, busybox, and the
# registries buildkitd.toml names as plain http): the archive's name carries a
# short hash of all of them.
# The registries: both of this cluster's (on the node IP); test/kind sets BUILDKIT_HTTP_REGISTRIES to its own.
buildkit_http_registries() { echo "${BUILDKIT_HTTP_REGISTRIES:-$NODE_IP:$REGISTRY_PORT $NODE_IP:$AUTH_REGISTRY_PORT}"; }
buildkit_image_tar() {
  local key; key=$(printf '%s ' "$BUILDKIT_VERSION" "$RUNC_VERSION" "$BUSYBOX_TAG" "$(buildkit_http_registries)" | sha256sum | cut -c1-8)
  echo "$IMAGE_ROOT/buildkit-$BUILDKIT_VERSION-$key.tar"
}
# tagged with the same hash: a node that cached an older build under a plain
# version tag would keep running it (imagePullPolicy IfNotPresent)
buildkit_image_tag() { local t; t=$(basename "$(buildkit_image_tar)" .tar); echo "${t#buildkit-}"; }
buildkitd_toml() {
  cat <<TOML
[worker.oci]
  enabled = true
  snapshotter = "auto"
[worker.containerd]
  enabled = false
TOML
  local r
  for r in $(buildkit_http_registries); do printf '[registry."%s"]\n  http = true\n' "$r"; done
}
build_image_buildkit() {
  local out; out=$(buildkit_image_tar)
  [[ -f $out ]] && return 0
  local r; r=$(mktemp -d "$IMAGE_ROOT/.tmp.XXXX")
  busybox_rootfs "$r"
  install -m 755 "$BUILDKIT_BIN/buildkitd" "$BUILDKIT_BIN/buildctl" "$BUILDKIT_BIN/buildctl-daemonless.sh" "$r/usr/bin/"
  install -m 755 "$RUNC_BIN/runc" "$r/usr/bin/buildkit-runc"
  mkdir -p "$r/etc/buildkit" "$r/var/lib/buildkit" "$r/etc/ssl/certs"
  cp /etc/ssl/certs/ca-certificates.crt "$r/etc/ssl/certs/"
  buildkitd_toml > "$r/etc/buildkit/buildkitd.toml"
  oci_image "$out" "$r" --config.entrypoint buildkitd --config.volume /var/lib/buildkit \
    --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
  rm -rf "$r"; log "built images/$(basename "$out")"
}

# Rootless BuildKit, after upstream's `moby/buildkit:*-rootless` (its Dockerfile's `rootless` stage): the
# privileged image's files plus rootlesskit and Debian's newuidmap/newgidmap (with the shared libraries ldd
# lists), user 1000 with /etc/subuid and /etc/subgid `user:100000:65536`, XDG_RUNTIME_DIR and HOME owned by
# 1000, image config User 1000:1000 (numeric, for runAsNonRoot). buildkitd in a user namespace reads its config
# from $HOME/.config/buildkit/buildkitd.toml. Tag: <version>-rootless-<hash of everything inside>.
#
# newuidmap/newgidmap get file capabilities (cap_setuid,cap_setfcap+ep / cap_setgid+ep, mode 755), not
# Debian's setuid-root mode 4755: Debian 12's build keeps euid 0 when it opens /proc/<pid>/uid_map, and the
# kernel then wants CAP_SYS_ADMIN over the new user namespace (the opener is not its owner, uid 1000), i.e.
# CAP_SYS_ADMIN added to the pod ("write to uid_map failed: Operation not permitted" without it). With file
# capabilities euid stays 1000, the namespace's owner, and the default capabilities suffice (README).
uidmap_version() { dpkg-query -W -f='${Version}' uidmap; }
buildkit_rootless_image_tar() {
  local key; key=$(printf '%s ' "$BUILDKIT_VERSION" "$RUNC_VERSION" "$BUSYBOX_TAG" "$(buildkit_http_registries)" \
    "$ROOTLESSKIT_VERSION" "$(uidmap_version)" fscaps | sha256sum | cut -c1-8)
  echo "$IMAGE_ROOT/buildkit-$BUILDKIT_VERSION-rootless-$key.tar"
}
buildkit_rootless_image_tag() { local t; t=$(basename "$(buildkit_rootless_image_tar)" .tar); echo "${t#buildkit-}"; }
build_image_buildkit_rootless() {
  local out; out=$(buildkit_rootless_image_tar)
  [[ -f $out ]] && return 0
  local r; r=$(mktemp -d "$IMAGE_ROOT/.tmp.XXXX")
  busybox_rootfs "$r"
  install -m 755 "$BUILDKIT_BIN/buildkitd" "$BUILDKIT_BIN/buildctl" "$BUILDKIT_BIN/buildctl-daemonless.sh" "$r/usr/bin/"
  install -m 755 "$RUNC_BIN/runc" "$r/usr/bin/buildkit-runc"
  install -m 755 "$ROOTLESSKIT_BIN/rootlesskit" "$r/usr/bin/rootlesskit"
  local b lib
  for b in newuidmap newgidmap; do
    install -o 0 -g 0 -m 755 "/usr/bin/$b" "$r/usr/bin/$b"
    # every library ldd resolves to a path (and the loader), at the same path
    for lib in $(ldd "/usr/bin/$b" | awk '$2=="=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}'); do
      [[ -e $r$lib ]] || install -D -m 755 "$(readlink -f "$lib")" "$r$lib"
    done
  done
  # file capabilities instead of setuid root: see the comment above (umoci keeps the xattr)
  setcap cap_setuid,cap_setfcap+ep "$r/usr/bin/newuidmap" && setcap cap_setgid+ep "$r/usr/bin/newgidmap" ||
    die "setcap on newuidmap/newgidmap failed"
  printf 'user:x:1000:1000:user:/home/user:/bin/sh\n' >> "$r/etc/passwd"
  printf 'user:x:1000:\n' >> "$r/etc/group"
  echo user:100000:65536 > "$r/etc/subuid"
  echo user:100000:65536 > "$r/etc/subgid"
  mkdir -p "$r/run/user/1000" "$r/home/user/.config/buildkit" "$r/home/user/.local/share/buildkit" \
    "$r/home/user/.local/tmp" "$r/var/lib/buildkit" "$r/etc/ssl/certs"
  cp /etc/ssl/certs/ca-certificates.crt "$r/etc/ssl/certs/"
  buildkitd_toml > "$r/home/user/.config/buildkit/buildkitd.toml"   # buildkitd in a user namespace reads this
  mkdir -p "$r/etc/buildkit" && buildkitd_toml > "$r/etc/buildkit/buildkitd.toml"
  chmod 700 "$r/run/user/1000"
  chown -R 1000:1000 "$r/run/user/1000" "$r/home/user" "$r/var/lib/buildkit"
  oci_image "$out" "$r" --config.entrypoint rootlesskit --config.entrypoint buildkitd \
    --config.user 1000:1000 --config.volume /home/user/.local/share/buildkit \
    --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --config.env HOME=/home/user --config.env USER=user --config.env XDG_RUNTIME_DIR=/run/user/1000 \
    --config.env TMPDIR=/home/user/.local/tmp \
    --config.env BUILDKIT_HOST=unix:///run/user/1000/buildkit/buildkitd.sock
  rm -rf "$r"; log "built images/$(basename "$out")"
}

# Debian 12 (bookworm) + Python: the base of the service image (`FROM $KCE_PYTHON_BASE_IMAGE`) and of anything
# else that needs a real distribution with python3.11, venv, git and tini. mmdebstrap --variant=minbase (Essential
# packages + apt; passwd, i.e. useradd/groupadd, comes with it) plus the packages below, from the same mirror
# and suites as this machine's apt, without docs (copyright files stay), man/info pages and translations: the
# dpkg path-exclude options stay in the image (/etc/dpkg/dpkg.cfg.d/99mmdebstrap), so apt-get in a build on top
# keeps them out too. Root-owned (mode root; `up` runs as root), empty /dev, no resolv.conf/hostname (the
# runtime provides them), apt lists removed (builder pods have no network anyway). Built once per machine
# (~60 s, needs the mirror); the archive name and tag carry a hash of the package list, the options, the sources
# and DEBIAN_PYTHON_REV, so changing any of them builds a new image under a new tag.
DEBIAN_PYTHON_REV=1           # bump when build_image_debian_python changes what ends up in the image
DEBIAN_PYTHON_PACKAGES=(python3 python3-venv git ca-certificates tini)
DEBIAN_PYTHON_OPTS=(
  --variant=minbase --mode=root --format=directory
  --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright'
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*'
  --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-include=/usr/share/locale/locale.alias'
  --customize-hook='rm -f "$1/etc/resolv.conf" "$1/etc/hostname"'
)
DEBIAN_PYTHON_SOURCES=(
  "deb http://deb.debian.org/debian bookworm main"
  "deb http://deb.debian.org/debian bookworm-updates main"
  "deb http://deb.debian.org/debian-security bookworm-security main"
)
debian_python_image_tag() {
  printf '%s\n' "$DEBIAN_PYTHON_REV" "${DEBIAN_PYTHON_PACKAGES[@]}" "${DEBIAN_PYTHON_OPTS[@]}" "${DEBIAN_PYTHON_SOURCES[@]}" |
    sha256sum | cut -c1-8
}
debian_python_image_tar() { echo "$IMAGE_ROOT/debian-python-$(debian_python_image_tag).tar"; }
build_image_debian_python() {
  local out; out=$(debian_python_image_tar)
  [[ -f $out ]] && return 0
  local r t=$SECONDS blog=$KCE_HOME/build-logs/debian-python.log
  r=$(mktemp -d "$IMAGE_ROOT/.tmp.XXXX")
  mkdir -p "$KCE_HOME/build-logs"
  log "building images/$(basename "$out") with mmdebstrap ... (log: build-logs/debian-python.log)"
  local include; include=$(IFS=,; echo "${DEBIAN_PYTHON_PACKAGES[*]}")
  if ! mmdebstrap "${DEBIAN_PYTHON_OPTS[@]}" --include="$include" bookworm "$r/rootfs" "${DEBIAN_PYTHON_SOURCES[@]}" \
      > "$blog" 2>&1; then
    rm -rf "$r"
    printf '[kce] ---- last lines of %s ----\n' "$blog" >&2; tail -n 40 "$blog" >&2
    die "mmdebstrap for the debian-python image failed"
  fi
  find "$r/rootfs/dev" -mindepth 1 -delete   # device nodes mmdebstrap made for dpkg; the runtime mounts /dev
  # what builds on top of it rely on
  local f
  for f in /usr/bin/python3 /usr/bin/git /usr/bin/tini /usr/sbin/useradd /usr/sbin/groupadd /etc/ssl/certs/ca-certificates.crt; do
    [[ -e $r/rootfs$f ]] || { rm -rf "$r"; die "debian-python rootfs lacks $f"; }
  done
  [[ $(stat -c '%a %U' "$r/rootfs/tmp") == "1777 root" ]] || { rm -rf "$r"; die "debian-python rootfs: /tmp is not 1777 root"; }
  grep -q '^root:x:0:0:' "$r/rootfs/etc/passwd" || { rm -rf "$r"; die "debian-python rootfs: no root in /etc/passwd"; }
  chroot "$r/rootfs" /usr/bin/python3 -c 'import venv, ssl, sqlite3' >> "$blog" 2>&1 ||
    { rm -rf "$r"; die "debian-python rootfs: python3 cannot import venv/ssl"; }
  oci_image "$out" "$r/rootfs" --config.cmd /bin/bash \
    --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --config.env LANG=C.UTF-8
  rm -rf "$r"; log "built images/$(basename "$out") in $(( SECONDS - t ))s"
}

build_images() {
  mkdir -p "$IMAGE_ROOT"; rm -rf "$IMAGE_ROOT"/.tmp.*
  build_image_pause
  build_image_busybox
  build_image_kaniko
  build_image_buildkit
  build_image_buildkit_rootless
  build_image_debian_python
}

# ctr against our containerd, in the namespace kubelet uses
ctr_k8s() { ctr --address "$CONTAINERD_SOCK" -n k8s.io "$@"; }

import_pause_image() {
  if ctr_k8s images ls -q | grep -qx "registry.k8s.io/pause:$PAUSE_TAG"; then return 0; fi
  ctr_k8s images import "$IMAGE_ROOT/pause-$PAUSE_TAG.tar" >&2 || die "importing the pause image failed"
  log "imported registry.k8s.io/pause:$PAUSE_TAG into containerd"
}

# push_image <oci-archive> <repo:tag>: skip when the registry already has this exact manifest
push_image() {
  local tar=$1 ref=$2 want have
  want=$(tar -xOf "$tar" ./index.json | jq -r '.manifests[0].digest')
  have=$(curl -sfI -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
    "http://127.0.0.1:$REGISTRY_PORT/v2/${ref%:*}/manifests/${ref##*:}" |
    tr -d '\r' | awk -F': ' 'tolower($1)=="docker-content-digest"{print $2}') || true   # 404: not pushed yet
  [[ $want == "$have" ]] && return 0
  skopeo copy -q --dest-tls-verify=false "oci-archive:$tar:img" "docker://127.0.0.1:$REGISTRY_PORT/$ref" >&2 ||
    die "pushing $ref failed"
  log "pushed $ref to 127.0.0.1:$REGISTRY_PORT"
}

push_images() {
  push_image "$IMAGE_ROOT/busybox-$BUSYBOX_TAG.tar" "kce/busybox:$BUSYBOX_TAG"
  push_image "$IMAGE_ROOT/kaniko-executor-$KANIKO_VERSION.tar" "kce/kaniko-executor:$KANIKO_VERSION"
  push_image "$(buildkit_image_tar)" "kce/buildkit:$(buildkit_image_tag)"
  push_image "$(buildkit_rootless_image_tar)" "kce/buildkit:$(buildkit_rootless_image_tag)"
  push_image "$(debian_python_image_tar)" "kce/debian-python:$(debian_python_image_tag)"
}
