# shellcheck shell=bash
# One CA and every certificate/kubeconfig the components need (openssl).
# Generated once; regenerated only when the node IP or name changed (they are
# SANs of the apiserver and kubelet certificates).

# cert <name> <subject> [subjectAltName]: key + certificate signed by our CA
cert() {
  local name=$1 subj=$2 san=${3:-} ext
  ext="basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=${san:+serverAuth,}clientAuth${san:+
subjectAltName=$san}"
  openssl req -new -newkey rsa:2048 -nodes -keyout "$PKI_DIR/$name.key" -subj "$subj" \
    -out "$PKI_DIR/$name.csr" 2>/dev/null &&
  openssl x509 -req -in "$PKI_DIR/$name.csr" -CA "$PKI_DIR/ca.crt" -CAkey "$PKI_DIR/ca.key" \
    -CAcreateserial -days 3650 -sha256 -extfile <(printf '%s\n' "$ext") -out "$PKI_DIR/$name.crt" 2>/dev/null ||
    die "certificate $name failed"
  rm -f "$PKI_DIR/$name.csr"
}

# kubeconfig <name> <cert name>: a kubeconfig for host components (apiserver on 127.0.0.1)
kubeconfig() {
  cat > "$CLUSTER_DIR/$1.kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters:
- name: kce
  cluster:
    server: https://127.0.0.1:$API_PORT
    certificate-authority: $PKI_DIR/ca.crt
users:
- name: $1
  user:
    client-certificate: $PKI_DIR/$2.crt
    client-key: $PKI_DIR/$2.key
contexts:
- name: kce
  context: {cluster: kce, user: $1}
current-context: kce
KC
}

make_certs() {
  local stamp="$NODE_NAME $NODE_IP"
  if [[ -f $PKI_DIR/stamp && $(cat "$PKI_DIR/stamp") == "$stamp" ]]; then return 0; fi
  log "generating certificates for $stamp"
  rm -rf "$PKI_DIR"; mkdir -p "$PKI_DIR"
  openssl req -x509 -new -newkey rsa:2048 -nodes -days 3650 -subj "/CN=kce-ca" \
    -keyout "$PKI_DIR/ca.key" -out "$PKI_DIR/ca.crt" 2>/dev/null || die "CA failed"
  cert admin "/O=system:masters/CN=kce-admin"
  cert kube-controller-manager "/CN=system:kube-controller-manager"
  cert kube-scheduler "/CN=system:kube-scheduler"
  cert kube-proxy "/CN=system:kube-proxy"
  cert kubelet "/O=system:nodes/CN=system:node:$NODE_NAME" "DNS:$NODE_NAME,IP:$NODE_IP,IP:127.0.0.1"
  cert apiserver "/CN=kube-apiserver" \
    "DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,DNS:localhost,DNS:$NODE_NAME,IP:127.0.0.1,IP:$NODE_IP,IP:$API_SERVICE_IP"
  cert apiserver-kubelet-client "/CN=kube-apiserver-kubelet-client"   # bound to system:kubelet-api-admin
  openssl genrsa -out "$PKI_DIR/sa.key" 2048 2>/dev/null && openssl rsa -in "$PKI_DIR/sa.key" -pubout -out "$PKI_DIR/sa.pub" 2>/dev/null ||
    die "service-account key failed"
  kubeconfig admin admin
  kubeconfig kube-controller-manager kube-controller-manager
  kubeconfig kube-scheduler kube-scheduler
  kubeconfig kube-proxy kube-proxy
  kubeconfig kubelet kubelet
  echo "$stamp" > "$PKI_DIR/stamp"
}
