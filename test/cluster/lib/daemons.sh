# shellcheck shell=bash
# Start each daemon of the cluster, in order, and wait until it answers.
# No systemd here: every daemon is a plain process started with setsid, with
# its own log file ($LOG_DIR/<name>.log) and a pid file ($RUN_DIR/<name>.pid).

# start_daemon <name> <command...>
start_daemon() {
  local name=$1; shift
  if alive "$name"; then log "$name: already running (pid $(pid_of "$name"))"; STARTED_NOW[$name]=0; return 0; fi
  mkdir -p "$RUN_DIR" "$LOG_DIR"
  rm -f "$RUN_DIR/$name.pid" "$RUN_DIR/$name.start"
  # logs are appended across runs; keep one older generation above 64 MiB
  if [[ -f $LOG_DIR/$name.log ]] && (( $(stat -c %s "$LOG_DIR/$name.log") > 64 << 20 )); then
    mv "$LOG_DIR/$name.log" "$LOG_DIR/$name.log.1"
  fi
  printf '\n==== %s: starting %s\n' "$(date -u +%FT%TZ)" "$*" >> "$LOG_DIR/$name.log"
  (
    # Close every inherited descriptor above 2: a daemon holding the pipe of
    # `eval "$(test/cluster/up)"` would make that command wait forever.
    for fd in /proc/$BASHPID/fd/*; do
      fd=${fd##*/}; (( fd > 2 )) && eval "exec $fd>&-" 2>/dev/null
    done
    # own session: a Ctrl-C or SIGHUP of the calling shell does not reach it
    exec setsid "$@" </dev/null >>"$LOG_DIR/$name.log" 2>&1
  ) &
  local pid=$!
  echo "$pid" > "$RUN_DIR/$name.pid"
  proc_start "$pid" > "$RUN_DIR/$name.start"
  STARTED_NOW[$name]=1
  log "$name: started (pid $pid, log ${LOG_DIR#"$KCE_HOME"/}/$name.log)"
}
declare -gA STARTED_NOW=()

# wait_ready <name> <seconds> <check command...>: die with the log tail on timeout or crash
wait_ready() {
  local name=$1 secs=$2; shift 2
  local deadline=$(( $(date +%s) + secs ))
  until "$@" >/dev/null 2>&1; do
    alive "$name" || die_with_log "$name" "$name exited during start-up"
    (( $(date +%s) < deadline )) || die_with_log "$name" "$name did not become ready within ${secs}s"
    sleep 0.2
  done
}

https_ok() { curl -sfk --max-time 2 "$1"; }   # health endpoints of our own components

# ---- host ---------------------------------------------------------------------
host_settings() {
  sysctl -qw net.ipv4.ip_forward=1                         # 0 at boot: pods could not reach anything
  sysctl -qw net.bridge.bridge-nf-call-iptables=1 2>/dev/null || log "warning: bridge-nf-call-iptables not settable"
  sysctl -qw fs.inotify.max_user_instances=8192 fs.inotify.max_user_watches=524288
  mount --make-rshared /                                   # mount propagation for kubelet volumes
}

# ---- registries -----------------------------------------------------------------
auth_credentials() {   # generated once per $KCE_HOME and reused
  local f=$KCE_HOME/auth-registry.credentials
  if [[ ! -s $f ]]; then
    printf 'kce %s\n' "$(openssl rand -hex 12)" > "$f.tmp" && mv "$f.tmp" "$f"
  fi
  read -r AUTH_USER AUTH_PASSWORD < "$f"
}

registry_config() { # <name> <port> [auth]
  { cat <<YML
version: 0.1
log: {level: warn}
storage:
  filesystem: {rootdirectory: $KCE_HOME/registry/$1}
  delete: {enabled: true}
http:
  addr: 0.0.0.0:$2
  secret: kce-$1
YML
    if [[ ${3:-} == auth ]]; then
      printf 'auth:\n  htpasswd: {realm: kce, path: %s}\n' "$CONF_DIR/htpasswd"
    fi
  } | write_conf "$CONF_DIR/$1.yml"
}

start_registries() {
  auth_credentials
  mkdir -p "$KCE_HOME/registry"
  # bcrypt (-B): the registry accepts nothing else
  # (bcrypt salts differ each time: only write it when the password does not match)
  if ! htpasswd -vb "$CONF_DIR/htpasswd" "$AUTH_USER" "$AUTH_PASSWORD" >/dev/null 2>&1; then
    htpasswd -Bbn "$AUTH_USER" "$AUTH_PASSWORD" > "$CONF_DIR/htpasswd" 2>/dev/null || die "htpasswd failed"
  fi
  registry_config registry "$REGISTRY_PORT"
  registry_config auth-registry "$AUTH_REGISTRY_PORT" auth
  start_daemon registry docker-registry serve "$CONF_DIR/registry.yml"
  start_daemon auth-registry docker-registry serve "$CONF_DIR/auth-registry.yml"
  wait_ready registry 20 curl -sf "http://127.0.0.1:$REGISTRY_PORT/v2/"
  # the auth registry answers 401 to anonymous requests, 200 with the password
  wait_ready auth-registry 20 curl -sf -u "$AUTH_USER:$AUTH_PASSWORD" "http://127.0.0.1:$AUTH_REGISTRY_PORT/v2/"
}

# ---- control plane ------------------------------------------------------------
start_etcd() {
  start_daemon etcd "$ETCD_BIN/etcd" --name kce --data-dir "$CLUSTER_DIR/etcd" \
    --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
    --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
    --initial-cluster kce=http://127.0.0.1:2380 --listen-metrics-urls http://127.0.0.1:2381 \
    --log-level warn
  wait_ready etcd 30 curl -sf http://127.0.0.1:2379/health
}

start_apiserver() {
  start_daemon kube-apiserver "$K8S_BIN/kube-apiserver" \
    --etcd-servers=http://127.0.0.1:2379 \
    --bind-address=0.0.0.0 --secure-port="$API_PORT" --advertise-address="$NODE_IP" \
    --tls-cert-file="$PKI_DIR/apiserver.crt" --tls-private-key-file="$PKI_DIR/apiserver.key" \
    --client-ca-file="$PKI_DIR/ca.crt" \
    --service-cluster-ip-range="$SERVICE_CIDR" \
    --allow-privileged=true \
    --authorization-mode=Node,RBAC \
    --enable-admission-plugins=NodeRestriction \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$PKI_DIR/sa.pub" --service-account-signing-key-file="$PKI_DIR/sa.key" \
    --kubelet-client-certificate="$PKI_DIR/apiserver-kubelet-client.crt" \
    --kubelet-client-key="$PKI_DIR/apiserver-kubelet-client.key" \
    --kubelet-preferred-address-types=InternalIP,Hostname \
    --v=1
  wait_ready kube-apiserver 60 kctl get --raw /readyz
  # the apiserver's client certificate may call the kubelet API (logs, exec, port-forward)
  kctl apply -f - >/dev/null <<YML || die "RBAC for the apiserver's kubelet client failed"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: kce-apiserver-kubelet-client}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: system:kubelet-api-admin}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: kube-apiserver-kubelet-client}]
YML
}

start_controller_manager() {
  local kc=$CLUSTER_DIR/kube-controller-manager.kubeconfig
  start_daemon kube-controller-manager "$K8S_BIN/kube-controller-manager" \
    --kubeconfig="$kc" --authentication-kubeconfig="$kc" --authorization-kubeconfig="$kc" \
    --bind-address=127.0.0.1 --secure-port=10257 \
    --root-ca-file="$PKI_DIR/ca.crt" \
    --cluster-signing-cert-file="$PKI_DIR/ca.crt" --cluster-signing-key-file="$PKI_DIR/ca.key" \
    --service-account-private-key-file="$PKI_DIR/sa.key" --use-service-account-credentials \
    --service-cluster-ip-range="$SERVICE_CIDR" \
    --leader-elect=false --v=1
  wait_ready kube-controller-manager 60 https_ok https://127.0.0.1:10257/healthz
}

start_scheduler() {
  local kc=$CLUSTER_DIR/kube-scheduler.kubeconfig
  write_conf "$CONF_DIR/kube-scheduler.yaml" <<YML
apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
clientConnection: {kubeconfig: $kc}
leaderElection: {leaderElect: false}
YML
  start_daemon kube-scheduler "$K8S_BIN/kube-scheduler" --config="$CONF_DIR/kube-scheduler.yaml" \
    --authentication-kubeconfig="$kc" --authorization-kubeconfig="$kc" \
    --bind-address=127.0.0.1 --secure-port=10259 --v=1
  wait_ready kube-scheduler 60 https_ok https://127.0.0.1:10259/healthz
}

# ---- node -----------------------------------------------------------------------
containerd_config() {
  mkdir -p "$CONF_DIR/certs.d" "$CNI_CONF_DIR"
  # plain-http registries: the host pulls by node IP (what pods use) or localhost
  local h
  for h in "$NODE_IP:$REGISTRY_PORT" "localhost:$REGISTRY_PORT" "127.0.0.1:$REGISTRY_PORT" \
           "$NODE_IP:$AUTH_REGISTRY_PORT" "localhost:$AUTH_REGISTRY_PORT" "127.0.0.1:$AUTH_REGISTRY_PORT"; do
    mkdir -p "$CONF_DIR/certs.d/$h"
    printf 'server = "http://%s"\n\n[host."http://%s"]\n  capabilities = ["pull", "resolve", "push"]\n' \
      "$h" "$h" | write_conf "$CONF_DIR/certs.d/$h/hosts.toml"
  done
  write_conf "$CONF_DIR/containerd.toml" <<TOML
version = 2
root = "$CONTAINERD_ROOT"
state = "$CONTAINERD_STATE"
[grpc]
  address = "$CONTAINERD_SOCK"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "registry.k8s.io/pause:$PAUSE_TAG"
  # we lack CAP_SYS_RESOURCE: kubelet asks for oom_score_adj -998 on sandboxes and runc
  # then fails with "can't get final child's PID from pipe: EOF"
  restrict_oom_score_adj = true
  # network namespaces under our state dir, so cleanup finds them
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "/usr/sbin/runc"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$CNI_BIN_DIR"
    conf_dir = "$CNI_CONF_DIR"
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "$CONF_DIR/certs.d"
TOML
  # CNI: one bridge, host-local IPAM (its state under our dir), masquerade, hostPort
  write_conf "$CNI_CONF_DIR/10-kce.conflist" <<JSON
{
  "cniVersion": "0.4.0",
  "name": "kce",
  "plugins": [
    {"type": "bridge", "bridge": "$CNI_BRIDGE", "isGateway": true, "ipMasq": true, "hairpinMode": true,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": "$POD_CIDR"}]], "routes": [{"dst": "0.0.0.0/0"}],
              "dataDir": "$CLUSTER_DIR/cni/ipam"}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
JSON
}

start_containerd() {
  containerd_config
  start_daemon containerd containerd --config "$CONF_DIR/containerd.toml"
  wait_ready containerd 30 ctr --address "$CONTAINERD_SOCK" version
  import_pause_image
}

start_kubelet() {
  write_conf "$CONF_DIR/kubelet.yaml" <<YML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
containerRuntimeEndpoint: unix://$CONTAINERD_SOCK
cgroupDriver: cgroupfs
failCgroupV1: false          # this machine has cgroup v1 (hybrid)
failSwapOn: false
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $PKI_DIR/ca.crt}
authorization: {mode: Webhook}
tlsCertFile: $PKI_DIR/kubelet.crt
tlsPrivateKeyFile: $PKI_DIR/kubelet.key
healthzBindAddress: 127.0.0.1
healthzPort: 10248
podLogsDir: $CLUSTER_DIR/pod-logs
imageGCHighThresholdPercent: 100   # never garbage-collect the imported pause image
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: 100Mi, nodefs.available: 1%, imagefs.available: 1%, nodefs.inodesFree: 1%}
serializeImagePulls: false
nodeStatusUpdateFrequency: 10s
nodeStatusReportFrequency: 10s     # a heartbeat every 10 s, so up can insist on a fresh one
YML
  # containerd answers `ctr version` before its CRI plugin has initialized; a kubelet started in that
  # window exits ("server is not initialized yet"). Start it again a few times before giving up.
  local attempt
  for attempt in 1 2 3 4 5; do
    start_daemon kubelet "$K8S_BIN/kubelet" --config="$CONF_DIR/kubelet.yaml" \
      --kubeconfig="$CLUSTER_DIR/kubelet.kubeconfig" --root-dir="$KUBELET_ROOT" \
      --node-ip="$NODE_IP" --hostname-override="$NODE_NAME" --v=1
    if wait_until 60 kubelet_healthy_or_gone && curl -sf http://127.0.0.1:10248/healthz >/dev/null 2>&1; then
      return 0
    fi
    alive kubelet && die_with_log kubelet "kubelet did not become ready within 60s"
    log "kubelet exited during start-up (attempt $attempt; containerd's CRI may still be initializing); retrying"
    sleep 1
  done
  die_with_log kubelet "kubelet exited during start-up $attempt times"
}

# true once the kubelet answers its health check, or once it has exited (the caller tells which)
kubelet_healthy_or_gone() { curl -sf http://127.0.0.1:10248/healthz >/dev/null 2>&1 || ! alive kubelet; }

start_kube_proxy() {
  write_conf "$CONF_DIR/kube-proxy.yaml" <<YML
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $CLUSTER_DIR/kube-proxy.kubeconfig}
mode: iptables
clusterCIDR: $POD_CIDR
hostnameOverride: $NODE_NAME
bindAddress: 0.0.0.0
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
YML
  start_daemon kube-proxy "$K8S_BIN/kube-proxy" --config="$CONF_DIR/kube-proxy.yaml" --v=1
  wait_ready kube-proxy 30 curl -s http://127.0.0.1:10256/healthz
}

# ---- readiness ------------------------------------------------------------------
# Ready with a heartbeat newer than $1 (epoch seconds): a Ready status left in
# etcd by a previous run says nothing about the kubelet running now.
node_fresh_ready() {
  local since=$1 hb st out
  out=$(kctl get node "$NODE_NAME" -o \
    jsonpath='{range .status.conditions[?(@.type=="Ready")]}{.status} {.lastHeartbeatTime}{end}' 2>/dev/null) || return 1
  read -r st hb <<< "$out"
  [[ $st == True && -n $hb ]] && (( $(date -d "$hb" +%s) >= since ))
}

wait_node_ready() {
  local since=$1
  wait_ready kubelet 90 node_fresh_ready "$since"
  wait_ready kube-controller-manager 60 kctl -n default get serviceaccount default
  log "node $NODE_NAME Ready (fresh heartbeat), default ServiceAccount present"
}

# KEP-1755: tells tools (and our engine) where the local registry is
publish_registry_hosting() {
  kctl apply -f - >/dev/null <<YML || die "creating kube-public/local-registry-hosting failed"
apiVersion: v1
kind: ConfigMap
metadata: {name: local-registry-hosting, namespace: kube-public}
data:
  localRegistryHosting.v1: |
    host: "$NODE_IP:$REGISTRY_PORT"
    hostFromClusterNetwork: "$NODE_IP:$REGISTRY_PORT"
    hostFromContainerRuntime: "$NODE_IP:$REGISTRY_PORT"
    help: "kube-container-engine test/cluster/README.md (plain-http registry started by test/cluster/up)"
YML
}
