# shellcheck shell=bash
# Stopping daemons by pid file and removing what the node left behind (mounts,
# containerd state, the CNI bridge, iptables chains). Used by `down`, and by
# `up` to clear the leftovers of a run whose processes were killed.

# stop_daemon <name> [timeout]: SIGTERM the pid from its pid file, wait, SIGKILL if needed.
# Only a pid we recorded (and whose start time still matches) is ever signalled.
# The API server's graceful shutdown waits up to its request timeout (60 s) for
# open watch connections; its state is all in etcd, so 5 s then SIGKILL is safe.
stop_timeout() { [[ $1 == kube-apiserver ]] && echo 5 || echo 30; }

stop_daemon() {
  local name=$1 secs=${2:-$(stop_timeout "$1")} pid
  if ! alive "$name"; then rm -f "$RUN_DIR/$name.pid" "$RUN_DIR/$name.start"; return 0; fi
  pid=$(pid_of "$name")
  kill -CONT "$pid" 2>/dev/null || true          # in case ctl froze it
  kill -TERM "$pid" 2>/dev/null || true
  if ! wait_until "$secs" eval "! alive $name"; then
    log "$name (pid $pid) ignored SIGTERM for ${secs}s: SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    wait_until 10 eval "! alive $name" || die "$name (pid $pid) does not die"
  fi
  rm -f "$RUN_DIR/$name.pid" "$RUN_DIR/$name.start"
  log "$name: stopped (pid $pid)"
}

# pid files naming a dead (or recycled) process: remove them
clear_stale_pidfiles() {
  local n
  for n in "${DAEMONS[@]}"; do
    if [[ -f $RUN_DIR/$n.pid ]] && ! alive "$n"; then
      log "$n: stale pid file (pid $(pid_of "$n") is gone)"; rm -f "$RUN_DIR/$n.pid" "$RUN_DIR/$n.start"
    fi
  done
}

# delete every pod while kubelet runs, so it tears sandboxes down properly
delete_all_pods() {
  alive kube-apiserver && alive kubelet || return 0
  kctl get --raw /readyz >/dev/null 2>&1 || return 0
  log "deleting all pods"
  if ! kctl delete pods --all --all-namespaces --grace-period=1 --wait=true --timeout=20s >/dev/null 2>&1; then
    # e.g. a pod stuck in ContainerCreating in a terminating namespace: its volume
    # set-up retries for minutes. Drop the API objects; containerd's leftovers
    # are removed below (remove_containerd_tasks).
    log "some pods did not go away in 20s: force-deleting them"
    kctl delete pods --all --all-namespaces --force --grace-period=0 --wait=false >/dev/null 2>&1 || true
  fi
}

# containerd containers/tasks left over (kubelet already stopped): kill and remove
remove_containerd_tasks() {
  alive containerd || return 0
  local id
  for id in $(ctr_k8s tasks ls -q 2>/dev/null); do
    ctr_k8s tasks kill -s SIGKILL "$id" >/dev/null 2>&1 || true
  done
  for id in $(ctr_k8s tasks ls -q 2>/dev/null); do
    wait_until 10 eval "! ctr_k8s tasks ls -q | grep -qx $id" || true
    ctr_k8s tasks delete -f "$id" >/dev/null 2>&1 || true
  done
  for id in $(ctr_k8s containers ls -q 2>/dev/null); do
    ctr_k8s tasks delete -f "$id" >/dev/null 2>&1 || true
    ctr_k8s containers delete "$id" >/dev/null 2>&1 || true
  done
}

# unmount everything below our kubelet root and containerd dirs, deepest first
unmount_ours() {
  local m n=0
  while read -r m; do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || log "warning: cannot unmount $m"
    n=$((n + 1))
  done < <(awk '{print $5}' /proc/self/mountinfo |
           grep -E "^($KUBELET_ROOT|$CONTAINERD_STATE|$CONTAINERD_ROOT)(/|$)" | sort -r)
  (( n == 0 )) || log "unmounted $n mounts"
}

# the CNI bridge, KUBE-*/CNI-* iptables chains, IPAM and CNI result files
remove_network_leftovers() {
  if ip link show "$CNI_BRIDGE" >/dev/null 2>&1; then ip link delete "$CNI_BRIDGE" && log "deleted bridge $CNI_BRIDGE"; fi
  local cmd table
  for cmd in iptables ip6tables; do
    command -v "$cmd-save" >/dev/null || continue
    for table in filter nat mangle; do
      # rewrite the table without our chains and the rules that jump to them
      if "$cmd-save" -t "$table" 2>/dev/null | grep -qE -- '(KUBE-|CNI-)'; then
        "$cmd-save" -t "$table" | grep -vE -- '(KUBE-|CNI-)' | "$cmd-restore" -T "$table" ||
          log "warning: cleaning $cmd $table failed"
        log "removed KUBE-*/CNI-* from $cmd $table"
      fi
    done
  done
  rm -rf "$CLUSTER_DIR/cni/ipam" /var/lib/cni/results/kce-* 2>/dev/null || true
}

# leftovers of a node whose containerd and kubelet are both gone (down, or killed)
clean_node_state() {
  unmount_ours
  # --one-file-system: never follow a mount that refused to go away
  rm -rf --one-file-system "$CONTAINERD_STATE" "$KUBELET_ROOT" "$CLUSTER_DIR/pod-logs"
  remove_network_leftovers
}
