# shellcheck shell=bash
# Shared settings and small helpers for test/cluster/{up,down,ctl}.
# Sourced, never run. Everything the scripts produce lives under $KCE_HOME.

# ---- pinned versions (bump one => only that component is rebuilt) ----------
KUBERNETES_VERSION=v1.33.13   # last 1.33 patch: 1.35+ refuses cgroup v1 and containerd 1.6 by default
ETCD_VERSION=v3.5.24          # = kubeadm v1.33's etcd (3.5.24-0): test/kind's nodes run this build too
KANIKO_VERSION=v1.25.5        # github.com/chainguard-dev/kaniko (upstream is archived)
BUILDKIT_VERSION=v0.32.2
RUNC_VERSION=v1.3.6           # static runc shipped inside the BuildKit image
ROOTLESSKIT_VERSION=v2.3.6    # user namespace helper of the rootless BuildKit image
PAUSE_TAG=3.10                # = containerd's sandbox_image below

# ---- layout -----------------------------------------------------------------
KCE_HOME=${KCE_HOME:-$HOME/.cache/kce}
KCE_HOME=$(mkdir -p "$KCE_HOME" && cd "$KCE_HOME" && pwd)   # absolute: it ends up in env lines
BIN_ROOT=$KCE_HOME/bin                       # bin/<component>-<version>/...
IMAGE_ROOT=$KCE_HOME/images                  # images/<name>-<version>.tar (docker-archive)
CLUSTER_DIR=$KCE_HOME/cluster                # runtime state of the running cluster
RUN_DIR=$CLUSTER_DIR/run                     # <daemon>.pid
LOG_DIR=$CLUSTER_DIR/logs                    # <daemon>.log
PKI_DIR=$CLUSTER_DIR/pki
CONF_DIR=$CLUSTER_DIR/conf
KUBECONFIG_FILE=$CLUSTER_DIR/admin.kubeconfig
ENV_FILE=$KCE_HOME/cluster.env
KUBELET_ROOT=$CLUSTER_DIR/kubelet            # --root-dir
CONTAINERD_ROOT=$CLUSTER_DIR/containerd/root
CONTAINERD_STATE=$CLUSTER_DIR/containerd/state
CONTAINERD_SOCK=$CONTAINERD_STATE/containerd.sock
CNI_CONF_DIR=$CLUSTER_DIR/cni/net.d
CNI_BIN_DIR=/usr/lib/cni                     # Debian's containernetworking-plugins
CNI_BRIDGE=cni0
POD_CIDR=10.88.0.0/16
SERVICE_CIDR=10.0.0.0/24
API_SERVICE_IP=10.0.0.1
API_PORT=6443
REGISTRY_PORT=5000        # open registry
AUTH_REGISTRY_PORT=5001   # htpasswd (bcrypt) registry

K8S_BIN=$BIN_ROOT/kubernetes-$KUBERNETES_VERSION
ETCD_BIN=$BIN_ROOT/etcd-$ETCD_VERSION
KANIKO_BIN=$BIN_ROOT/kaniko-$KANIKO_VERSION
BUILDKIT_BIN=$BIN_ROOT/buildkit-$BUILDKIT_VERSION
RUNC_BIN=$BIN_ROOT/runc-$RUNC_VERSION
ROOTLESSKIT_BIN=$BIN_ROOT/rootlesskit-$ROOTLESSKIT_VERSION
PAUSE_BIN=$BIN_ROOT/pause-$KUBERNETES_VERSION   # pause.c comes from the k8s module

# Daemons in start order; down stops them in reverse.
DAEMONS=(registry auth-registry etcd kube-apiserver kube-controller-manager kube-scheduler containerd kubelet kube-proxy)

# ---- Go: everything cached under $KCE_HOME so a fresh clone reuses it ------
export GOTOOLCHAIN=local GOFLAGS="-mod=mod -buildvcs=false"
export GOCACHE=$KCE_HOME/go/cache GOMODCACHE=$KCE_HOME/go/mod GOPATH=$KCE_HOME/go/path
export PATH=/usr/local/go/bin:$PATH

# ---- logging: stdout is reserved for `export` lines --------------------------
_t0=${_t0:-$(date +%s)}
log()  { printf '[kce %3ss] %s\n' "$(( $(date +%s) - _t0 ))" "$*" >&2; }
die()  { printf '[kce] ERROR: %s\n' "$*" >&2; exit 1; }

# die with the tail of a daemon's log, so a failed step explains itself
die_with_log() { # <daemon> <message>
  local f=$LOG_DIR/$1.log
  printf '[kce] ERROR: %s\n' "$2" >&2
  if [[ -f $f ]]; then printf '[kce] ---- last lines of %s ----\n' "$f" >&2; tail -n 40 "$f" >&2; fi
  exit 1
}

# wait_until <seconds> <command...>: poll every 0.2 s; returns 1 on timeout
wait_until() {
  local deadline=$(( $(date +%s) + $1 )); shift
  until "$@" >/dev/null 2>&1; do
    (( $(date +%s) < deadline )) || return 1
    sleep 0.2
  done
}

kctl() { "$K8S_BIN/kubectl" --kubeconfig "$KUBECONFIG_FILE" "$@"; }

# node IP = address of the interface that carries the default route
# (the hostname resolves to 127.0.0.1 in /etc/hosts, which is useless to pods)
node_ip() {
  local dev
  dev=$(ip -4 route show default | awk '{for(i=1;i<=NF;i++) if($i=="dev"){print $(i+1); exit}}')
  [[ -n $dev ]] || die "no default route: cannot pick a node IP"
  ip -4 -o addr show dev "$dev" | awk '{split($4,a,"/"); print a[1]; exit}'
}
NODE_NAME=$(hostname | tr '[:upper:]' '[:lower:]')

# ---- pid files ---------------------------------------------------------------
pid_of() { local f=$RUN_DIR/$1.pid; [[ -f $f ]] && cat "$f"; }
# alive <daemon>: the pid file names a live process that is still that daemon
# (compare its start time recorded at launch, so a recycled pid is not "ours")
alive() {
  local pid; pid=$(pid_of "$1") || return 1
  [[ -n $pid && -d /proc/$pid ]] || return 1
  local want state start; want=$(cat "$RUN_DIR/$1.start" 2>/dev/null) || return 1
  read -r state start < <(awk '{print $3, $22}' "/proc/$pid/stat" 2>/dev/null) || return 1
  # a zombie has exited: our pid 1 reaps orphans only every few seconds
  [[ $state != Z && $start == "$want" ]]
}
proc_start() { awk '{print $22}' "/proc/$1/stat" 2>/dev/null; }   # start time in clock ticks since boot

# write_conf <path>: write stdin to path only when the content differs. A running
# kube-proxy exits when its config file is rewritten, even with the same bytes.
write_conf() {
  local new; new=$(cat)
  [[ -f $1 && $(cat "$1") == "$new" ]] && return 0
  printf '%s\n' "$new" > "$1.tmp" && mv "$1.tmp" "$1"
}

# lock: one up/down/ctl at a time per $KCE_HOME (two engineers, or CI and a
# person, running up at once would start twin daemons). fd 9 is closed in the
# daemons (start_daemon closes every fd above 2), so they do not hold the lock.
lock_kce_home() {
  exec 9>"$KCE_HOME/.lock"
  if ! flock -n 9; then
    log "waiting for another up/down/ctl on $KCE_HOME to finish ..."
    flock -w 1800 9 || die "could not lock $KCE_HOME/.lock within 30 min"
  fi
}
