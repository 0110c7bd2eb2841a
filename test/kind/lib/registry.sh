# shellcheck shell=bash
# kind's "local registry" recipe (site/static/examples/kind-with-registry.sh), with two registries as the e2e
# suite needs (an open one, one behind htpasswd): containers on Docker's default bridge, published on the
# namespace's loopback, connected to the kind network after the cluster is up; every node maps their names to
# them with containerd hosts.toml files; kube-public/local-registry-hosting (KEP-1755) documents the open one.
# The registry image is Debian's docker-registry binary (and the libc it links) on busybox.

KIND_REGISTRY=kind-registry KIND_REGISTRY_PORT=5001            # as the host sees it: localhost:5001
KIND_AUTH_REGISTRY=kind-auth-registry KIND_AUTH_REGISTRY_PORT=5002
KIND_REGISTRY_IMAGE=kce.local/registry:$(dpkg-query -W -f='${Version}' docker-registry 2>/dev/null | sed 's/[^A-Za-z0-9_.-]/-/g')

build_kind_registry_image() {
  docker image inspect "$KIND_REGISTRY_IMAGE" >/dev/null 2>&1 && return 0
  local r; r=$(mktemp -d "$KIND_HOME/.tmp.XXXX")
  busybox_rootfs "$r/rootfs"
  install -D -m 755 /usr/bin/docker-registry "$r/rootfs/usr/bin/docker-registry"
  local lib
  for lib in $(ldd /usr/bin/docker-registry | awk '$2=="=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}'); do
    [[ -e $r/rootfs$lib ]] || install -D -m 755 "$(readlink -f "$lib")" "$r/rootfs$lib"
  done
  docker_archive "$r/image.tar" "$r/rootfs" '{"Entrypoint": ["/usr/bin/docker-registry", "serve"], "Cmd": ["/etc/registry/config.yml"], "ExposedPorts": {"5000/tcp": {}}}' \
    "$KIND_REGISTRY_IMAGE"
  docker load -q -i "$r/image.tar" >&2 || die "docker load of the registry image failed"
  rm -rf "$r"
}

kind_registry_config() { # <name> [auth]
  local d=$KIND_HOME/registry-conf/$1; mkdir -p "$d"
  { printf 'version: 0.1\nlog: {level: warn}\nstorage:\n  filesystem: {rootdirectory: /var/lib/registry}\n  delete: {enabled: true}\n'
    printf 'http:\n  addr: 0.0.0.0:5000\n  secret: kce-%s\n' "$1"
    [[ ${2:-} == auth ]] && printf 'auth:\n  htpasswd: {realm: kce, path: /etc/registry/htpasswd}\n'
  } > "$d/config.yml"
  if [[ ${2:-} == auth ]] && ! htpasswd -vb "$d/htpasswd" "$AUTH_USER" "$AUTH_PASSWORD" >/dev/null 2>&1; then
    htpasswd -Bbn "$AUTH_USER" "$AUTH_PASSWORD" > "$d/htpasswd" 2>/dev/null || die "htpasswd failed"
  fi
  true
}

start_kind_registry() { # <name> <host port> [auth]
  local name=$1 port=$2
  [[ $(docker inspect -f '{{.State.Running}}' "$name" 2>/dev/null) == true ]] && return 0
  docker rm -f "$name" >/dev/null 2>&1 || true
  kind_registry_config "$name" "${3:-}"
  docker run -d --restart=always -p "127.0.0.1:$port:5000" --network bridge --name "$name" \
    -v "$KIND_HOME/registry-conf/$name:/etc/registry:ro" -v "$KIND_HOME/registry/$name:/var/lib/registry" \
    "$KIND_REGISTRY_IMAGE" >/dev/null || die "starting the $name container failed"
}

start_kind_registries() {
  auth_credentials
  build_kind_registry_image
  start_kind_registry "$KIND_REGISTRY" "$KIND_REGISTRY_PORT"
  start_kind_registry "$KIND_AUTH_REGISTRY" "$KIND_AUTH_REGISTRY_PORT" auth
  wait_until 20 curl -sf "http://127.0.0.1:$KIND_REGISTRY_PORT/v2/" || die "$KIND_REGISTRY does not answer"
  wait_until 20 curl -sf -u "$AUTH_USER:$AUTH_PASSWORD" "http://127.0.0.1:$KIND_AUTH_REGISTRY_PORT/v2/" ||
    die "$KIND_AUTH_REGISTRY does not answer"
}

# the recipe's steps 3–5, once the cluster exists
wire_kind_registries() {
  local node name
  for node in $(kind_cmd get nodes --name "$KIND_CLUSTER"); do
    for name in "localhost:$KIND_REGISTRY_PORT=$KIND_REGISTRY" "$KIND_REGISTRY:5000=$KIND_REGISTRY" \
        "localhost:$KIND_AUTH_REGISTRY_PORT=$KIND_AUTH_REGISTRY" "$KIND_AUTH_REGISTRY:5000=$KIND_AUTH_REGISTRY"; do
      docker exec "$node" mkdir -p "/etc/containerd/certs.d/${name%%=*}"
      printf '[host."http://%s:5000"]\n' "${name#*=}" |
        docker exec -i "$node" cp /dev/stdin "/etc/containerd/certs.d/${name%%=*}/hosts.toml"
    done
  done
  for name in "$KIND_REGISTRY" "$KIND_AUTH_REGISTRY"; do
    [[ $(docker inspect -f '{{json .NetworkSettings.Networks.kind}}' "$name") == null ]] &&
      { docker network connect kind "$name" || die "docker network connect kind $name failed"; }
  done
  # Clients in the namespace (test/kind/exec runs them with `ip netns exec`, which reads /etc/netns/<ns>/hosts
  # as /etc/hosts) reach the registries by the same names as pods and nodes: kind-registry:5000, … One name
  # everywhere, as with test/cluster's node IP.
  mkdir -p "/etc/netns/$KIND_NETNS"
  { grep -v -e "$KIND_REGISTRY" -e "$KIND_AUTH_REGISTRY" /etc/hosts
    for name in "$KIND_REGISTRY" "$KIND_AUTH_REGISTRY"; do
      printf '%s %s\n' "$(docker inspect -f '{{.NetworkSettings.Networks.kind.IPAddress}}' "$name")" "$name"
    done
  } > "/etc/netns/$KIND_NETNS/hosts"
  kind_kubectl apply -f - >/dev/null <<YML || die "creating kube-public/local-registry-hosting failed"
apiVersion: v1
kind: ConfigMap
metadata: {name: local-registry-hosting, namespace: kube-public}
data:
  localRegistryHosting.v1: |
    host: "localhost:$KIND_REGISTRY_PORT"
    hostFromClusterNetwork: "$KIND_REGISTRY:5000"
    hostFromContainerRuntime: "$KIND_REGISTRY:5000"
    help: "https://kind.sigs.k8s.io/docs/user/local-registry/"
YML
}

# the images the e2e suite runs (as test/cluster's push_images, into kind-registry)
push_kind_images() {
  REGISTRY_PORT=$KIND_REGISTRY_PORT push_images
}
