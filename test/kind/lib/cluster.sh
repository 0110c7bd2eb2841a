# shellcheck shell=bash
# The kind cluster itself: `kind create cluster --config kind-config.yaml` with our node image.

KIND_CLUSTER=kind     # kind's default name, as the README's and kind's own recipes use
KIND_KUBECONFIG=$KIND_HOME/kubeconfig
# the registries as pods and nodes see them (they push and pull by these names); the host uses localhost:<port>
BUILDKIT_HTTP_REGISTRIES="$KIND_REGISTRY:5000 $KIND_AUTH_REGISTRY:5000"

# kind runs `docker`: the CLI that matches the daemon (Debian's), not a newer one earlier on PATH
kind_cmd() { PATH=$KIND_RUN/bin:$PATH "$KIND_BIN/kind" "$@"; }
kind_kubectl() { "$K8S_BIN/kubectl" --kubeconfig "$KIND_KUBECONFIG" "$@"; }

load_kind_node_image() {
  mkdir -p "$KIND_RUN/bin"; ln -sf /usr/bin/docker "$KIND_RUN/bin/docker"
  local ref=$KIND_NODE_IMAGE_NAME:$(kind_node_tag)
  docker image inspect "$ref" >/dev/null 2>&1 && return 0
  log "docker load $ref"
  docker load -q -i "$(kind_node_archive)" >&2 || die "docker load of the node image failed"
  # node images of earlier tags (≈ 1 GiB each, in Docker's store and as archives): only this one is used
  local old
  for old in $(docker image ls --format '{{.Repository}}:{{.Tag}}' "$KIND_NODE_IMAGE_NAME" | grep -vx "$ref"); do
    docker image rm "$old" >/dev/null 2>&1 || true
  done
  find "$KIND_HOME/images" -name 'kind-node-*.tar' ! -name "$(basename "$(kind_node_archive)")" -delete
}

kind_cluster_running() {
  kind_cmd get clusters 2>/dev/null | grep -qx "$KIND_CLUSTER" || return 1
  local n
  for n in $(kind_cmd get nodes --name "$KIND_CLUSTER"); do
    [[ $(docker inspect -f '{{.State.Running}}' "$n" 2>/dev/null) == true ]] || return 1
  done
}

create_kind_cluster() {
  if kind_cluster_running; then log "kind cluster '$KIND_CLUSTER' already running"; return 0; fi
  kind_cmd delete cluster --name "$KIND_CLUSTER" >&2 2>&1 || true   # a half-made or stopped one
  local t=$SECONDS
  log "kind create cluster --config kind-config.yaml (image $KIND_NODE_IMAGE_NAME:$(kind_node_tag))"
  kind_cmd create cluster --name "$KIND_CLUSTER" --config "$REPO/kind-config.yaml" \
    --image "$KIND_NODE_IMAGE_NAME:$(kind_node_tag)" --kubeconfig "$KIND_KUBECONFIG" --wait 300s >&2 ||
    die "kind create cluster failed (nodes' logs: test/kind/exec $KIND_BIN/kind export logs)"
  log "kind create cluster took $(( SECONDS - t ))s"
}

wait_kind_nodes_ready() {
  kind_kubectl wait --for=condition=Ready nodes --all --timeout=300s >&2 || die "kind nodes not Ready"
  local n; n=$(kind_kubectl get nodes --no-headers | wc -l)
  log "$n nodes Ready"
}

# Routes from the namespace into the cluster, as a node has them: each node's podCIDR via that node, and the
# Service network via the control plane (its kube-proxy forwards and masquerades), so tests reach ClusterIPs and
# pod IPs the way they do on test/cluster's single node.
route_into_kind() {
  local name cidr ip cp
  while read -r name cidr ip; do
    [[ -n $cidr && -n $ip ]] || continue
    ip route replace "$cidr" via "$ip" || die "ip route $cidr via $ip failed"
    [[ $name == *control-plane ]] && cp=$ip
  done < <(kind_kubectl get nodes -o jsonpath='{range .items[*]}{.metadata.name} {.spec.podCIDR} {.status.addresses[?(@.type=="InternalIP")].address}{"\n"}{end}')
  [[ -n ${cp:-} ]] || die "no control-plane node address"
  local services; services=$(kind_kubectl get service kubernetes -n default -o jsonpath='{.spec.clusterIP}')
  # kind's default serviceSubnet (kind-config.yaml sets none)
  ip route replace 10.96.0.0/16 via "$cp" || die "ip route 10.96.0.0/16 via $cp failed"
  log "routes into the cluster: pod CIDRs via their nodes, 10.96.0.0/16 (kubernetes: $services) via $cp"
}

# the gateway of kind's network: this namespace's address as the nodes and pods see it
kind_gateway_ip() {
  docker network inspect kind -f '{{range .IPAM.Config}}{{println .Gateway}}{{end}}' | grep -m1 '\.' ||
    die "no IPv4 gateway on the kind network"
}

# The registries go by the names pods and nodes use (kind-registry:5000, kind-auth-registry:5000) for the
# tests too: test/kind/exec resolves them (see wire_kind_registries).
kind_env_lines() {
  local reg=$KIND_REGISTRY:5000 auth=$KIND_AUTH_REGISTRY:5000
  printf 'export %s=%q\n' \
    KCE_HOME "$KCE_HOME" \
    KCE_KIND "$KIND_CLUSTER" \
    KUBECONFIG "$KIND_KUBECONFIG" \
    KCE_BIN_DIR "$K8S_BIN" \
    KCE_NODE_IP "$(kind_gateway_ip)" \
    KCE_REGISTRY "$reg" \
    KCE_REGISTRY_PUSH "$reg" \
    KCE_REGISTRY_INSECURE true \
    KCE_BASE_IMAGE "$reg/kce/busybox:$BUSYBOX_TAG" \
    KCE_KANIKO_IMAGE "$reg/kce/kaniko-executor:$KANIKO_VERSION" \
    KCE_BUILDKIT_IMAGE "$reg/kce/buildkit:$(buildkit_image_tag)" \
    KCE_BUILDKIT_ROOTLESS_IMAGE "$reg/kce/buildkit:$(buildkit_rootless_image_tag)" \
    KCE_PYTHON_BASE_IMAGE "$reg/kce/debian-python:$(debian_python_image_tag)" \
    KCE_AUTH_REGISTRY "$auth" \
    KCE_AUTH_REGISTRY_PUSH "$auth" \
    KCE_INSECURE_REGISTRIES "$reg,$auth" \
    KCE_AUTH_USER "$AUTH_USER" \
    KCE_AUTH_PASSWORD "$AUTH_PASSWORD"
}
