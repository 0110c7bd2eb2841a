# shellcheck shell=bash
# Debian packages the cluster needs. Skips apt entirely when all are installed.
APT_PACKAGES=(
  containerd runc containernetworking-plugins   # container runtime + CNI plugins (/usr/lib/cni)
  iptables conntrack iproute2                   # kube-proxy, CNI bridge, node IP
  openssl ca-certificates jq curl               # certificates, JSON, health checks
  umoci skopeo                                  # build/convert OCI images from local files
  docker-registry apache2-utils                 # the two registries; htpasswd for the auth one
  busybox-static                                # the base image's only binary
  uidmap libcap2-bin                            # newuidmap/newgidmap + setcap, for the rootless BuildKit image
  gcc libc6-dev libseccomp-dev                  # static pause and static runc (cgo + libseccomp)
  mmdebstrap                                    # Debian root filesystem of the debian-python image
)

install_packages() {
  local missing=() p
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if (( ${#missing[@]} == 0 )); then log "apt: all packages present"; return 0; fi
  log "apt: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # the package lists may be missing or stale on a fresh machine: update once, then install
  if ! apt-get install -y -q --no-install-recommends "${missing[@]}" >&2; then
    apt-get update -q >&2 || die "apt-get update failed"
    apt-get install -y -q --no-install-recommends "${missing[@]}" >&2 || die "apt-get install failed"
  fi
}
