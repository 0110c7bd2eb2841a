# shellcheck shell=bash
# A Docker daemon (Debian's docker.io) for kind, in a network namespace of its own: its iptables rules,
# bridges and published ports stay in there and cannot disturb the local cluster of test/cluster or the
# machine. Everything that talks to the kind cluster (docker, kind, kubectl, the tests) runs inside the
# namespace too: test/kind/exec. Its state lives under $KIND_HOME/docker; its sockets under /run/kce-kind.

KIND_NETNS=kce-kind
KIND_RUN=/run/kce-kind
export DOCKER_HOST=unix://$KIND_RUN/docker.sock
KIND_DOCKER_PACKAGES=(docker.io)

install_docker() {
  dpkg-query -W -f='${Status}' docker.io 2>/dev/null | grep -q 'install ok installed' && return 0
  log "apt: installing docker.io (its daemon is started by test/kind/up only, in its own network namespace)"
  export DEBIAN_FRONTEND=noninteractive
  # policy-rc.d: the package must not start a daemon in the machine's own network namespace
  local had_policy=0; [[ -e /usr/sbin/policy-rc.d ]] && had_policy=1
  [[ $had_policy == 1 ]] || { printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod 755 /usr/sbin/policy-rc.d; }
  local ok=1
  if ! apt-get install -y -q --no-install-recommends "${KIND_DOCKER_PACKAGES[@]}" >&2; then
    apt-get update -q >&2 && apt-get install -y -q --no-install-recommends "${KIND_DOCKER_PACKAGES[@]}" >&2 || ok=0
  fi
  [[ $had_policy == 1 ]] || rm -f /usr/sbin/policy-rc.d
  [[ $ok == 1 ]] || die "apt-get install docker.io failed"
}

ensure_netns() {
  [[ -e /run/netns/$KIND_NETNS ]] || ip netns add "$KIND_NETNS" || die "ip netns add $KIND_NETNS failed"
  ip -n "$KIND_NETNS" link set lo up
}

dockerd_alive() { [[ -f $KIND_RUN/dockerd.pid ]] && kill -0 "$(cat "$KIND_RUN/dockerd.pid")" 2>/dev/null; }

# kind's known issues: more inotify instances than Debian's default 128 for three nodes' kubelets and systemd
kind_host_settings() {
  local want=512 cur; cur=$(sysctl -n fs.inotify.max_user_instances)
  (( cur >= want )) || sysctl -qw fs.inotify.max_user_instances=$want
  cur=$(sysctl -n fs.inotify.max_user_watches)
  (( cur >= 524288 )) || sysctl -qw fs.inotify.max_user_watches=524288
}

# The capabilities this machine's processes cannot have (CAP_SYS_RESOURCE here), as OCI names.
missing_capabilities() {
  local bnd b; bnd=0x$(awk '/^CapBnd:/ {print $2}' /proc/self/status)
  for (( b = 0; b <= $(cat /proc/sys/kernel/cap_last_cap); b++ )); do
    (( (bnd >> b) & 1 )) && continue
    capsh --decode="$(printf '%x' $(( 1 << b )))" | sed 's/.*=//' | tr '[:lower:]' '[:upper:]'
  done
}

# Docker 20.10 gives a --privileged container every capability it knows, also those outside the bounding set
# of its own process; runc then fails with "unable to apply caps: operation not permitted" (containerd's CRI
# grants only the current set, so the local cluster's privileged pods are fine). kind's nodes are privileged,
# and so are its `docker exec --privileged` calls: our dockerd runs runc through this wrapper, which removes
# the capabilities the machine lacks from the container's (create) or process's (exec) spec first.
write_runc_wrapper() {
  local drop; drop=$(missing_capabilities | jq -Rnc '[inputs]') || die "reading the capability bounding set failed"
  cat > "$KIND_RUN/bin/runc.tmp" <<'WRAPPER'
#!/bin/bash
# written by test/kind/lib/docker.sh (write_runc_wrapper)
drop='DROP'
args=("$@")
for (( i = 0; i < ${#args[@]} - 1; i++ )); do
  case ${args[i]} in
    --bundle|-b) spec=${args[i+1]}/config.json; caps='.process.capabilities' ;;
    --process|-p) spec=${args[i+1]}; caps='.capabilities' ;;
    *) continue ;;
  esac
  [[ -f $spec ]] || continue
  jq --argjson drop "$drop" "if $caps then $caps |= with_entries(.value |= ((. // []) - \$drop)) else . end" "$spec" > "$spec.kce" &&
    mv "$spec.kce" "$spec"
done
exec /usr/sbin/runc "$@"
WRAPPER
  sed "s|^drop='DROP'|drop='$drop'|" "$KIND_RUN/bin/runc.tmp" > "$KIND_RUN/bin/runc" && rm "$KIND_RUN/bin/runc.tmp"
  chmod 755 "$KIND_RUN/bin/runc"
}

start_dockerd() {
  mkdir -p "$KIND_RUN/bin" "$KIND_HOME/docker" "$KIND_HOME/logs"
  if dockerd_alive; then log "dockerd already running"; return 0; fi
  write_runc_wrapper
  # oom-score-adjust 0: without CAP_SYS_RESOURCE dockerd cannot lower its own score (its default is -500)
  jq -n --arg runc "$KIND_RUN/bin/runc" '{"oom-score-adjust": 0, "storage-driver": "overlay2", "log-driver": "json-file",
    "log-opts": {"max-size": "10m"}, "exec-opts": ["native.cgroupdriver=cgroupfs"],
    "runtimes": {"kce-runc": {"path": $runc}}, "default-runtime": "kce-runc"}' > "$KIND_RUN/daemon.json"
  log "starting dockerd in network namespace $KIND_NETNS (log: ${KIND_HOME#"$KCE_HOME"/}/logs/dockerd.log)"
  setsid nsenter --net="/run/netns/$KIND_NETNS" dockerd --config-file "$KIND_RUN/daemon.json" \
    --data-root "$KIND_HOME/docker" --exec-root "$KIND_RUN/exec" --pidfile "$KIND_RUN/dockerd.pid" \
    -H "$DOCKER_HOST" > "$KIND_HOME/logs/dockerd.log" 2>&1 < /dev/null 9>&- &
  wait_until 60 docker version || { tail -n 30 "$KIND_HOME/logs/dockerd.log" >&2; die "dockerd did not start"; }
}

# stop dockerd (containers first: `docker rm -f` by the callers), wait until it and its containerd are gone
stop_dockerd() {
  dockerd_alive || return 0
  local pid; pid=$(cat "$KIND_RUN/dockerd.pid")
  kill "$pid" 2>/dev/null || true
  wait_until 60 bash -c "! kill -0 $pid" || { kill -9 "$pid" 2>/dev/null || true; }
}
