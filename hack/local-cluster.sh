#!/usr/bin/env bash
# Starts and stops a local Kubernetes control plane (etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler; no kubelet, so no node and no pod ever runs) from the
# binaries hack/build-kube-binaries.sh builds. Everything listens on 127.0.0.1 only, on ports
# picked at `up` time so that several clusters (or a test) can run side by side.
#
# Usage: hack/local-cluster.sh up DIR     start; DIR holds all state and DIR/kubeconfig (admin)
#        hack/local-cluster.sh down DIR   stop every process started by `up` and remove DIR
# Env:   KUBE_ASSETS (default bin/k8s/v1.36.5 of the repository)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
assets=${KUBE_ASSETS:-$root/bin/k8s/v1.36.5}
components=(etcd kube-apiserver kube-controller-manager kube-scheduler)
# Present in every DIR this script made: `down` removes only such a directory.
marker=.local-cluster
ready_timeout=60

usage() {
  echo "usage: $0 up|down DIR" >&2
  exit 2
}

die() {
  echo "local-cluster: $*" >&2
  exit 1
}

[ $# -eq 2 ] || usage
action=$1
dir=$2

# ours PID: true when PID is alive and is one of our processes (every command line names DIR),
# so that a recycled PID or a zombie is never mistaken for, or killed as, a component.
ours() {
  local args
  args=$(ps -ww -o args= -p "$1" 2>/dev/null) || return 1
  [[ $args == *"$dir/"* ]]
}

# running NAME: true when the recorded process of component NAME is alive.
running() {
  [ -e "$dir/pids/$1.pid" ] && ours "$(<"$dir/pids/$1.pid")"
}

# stop NAME: SIGTERM, then SIGKILL if the component is still there after 15 s.
stop() {
  local pid deadline=$((SECONDS + 15))
  running "$1" || return 0
  pid=$(<"$dir/pids/$1.pid")
  kill -TERM "$pid" 2>/dev/null || true
  while running "$1"; do
    if ((SECONDS >= deadline)); then
      echo "local-cluster: $1 still running 15 s after SIGTERM, sending SIGKILL" >&2
      kill -KILL "$pid" 2>/dev/null || true
      sleep 1
      ! running "$1" || die "$1 (pid $pid) survived SIGKILL"
      return 0
    fi
    sleep 0.2
  done
}

# stop_all stops the components in the reverse order of their start: the API server shuts down
# in about a second while etcd is there, but hangs until SIGKILL without it.
stop_all() {
  local i
  for ((i = ${#components[@]} - 1; i >= 0; i--)); do
    stop "${components[i]}"
  done
}

down() {
  if [ ! -d "$dir" ]; then
    echo "local-cluster: nothing in $dir, already down"
    return 0
  fi
  dir=$(cd "$dir" && pwd -P)
  [ -e "$dir/$marker" ] || die "$dir was not made by $0: not touching it"
  stop_all
  rm -rf "$dir"
  echo "local-cluster: stopped, removed $dir"
}

# issue NAME SUBJECT EXTENSIONS: an EC key and a certificate for it signed by the CA (EC keys are
# generated instantly, unlike RSA ones).
issue() {
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$pki/$1.key"
  openssl req -new -key "$pki/$1.key" -subj "$2" -out "$pki/$1.csr"
  openssl x509 -req -in "$pki/$1.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
    -days 30 -sha256 -extfile <(printf '%b\n' "$3") -out "$pki/$1.crt"
}

make_pki() {
  local client='basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth'
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$pki/ca.key"
  openssl req -new -key "$pki/ca.key" -subj /CN=kinto-demo-ca -out "$pki/ca.csr"
  openssl x509 -req -in "$pki/ca.csr" -signkey "$pki/ca.key" -days 30 -sha256 -out "$pki/ca.crt" \
    -extfile <(printf 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,digitalSignature\n')
  # The SANs cover how clients reach the API server here and, for completeness, from a pod
  # (the first IP of the service range is the ClusterIP of the "kubernetes" Service).
  issue apiserver /CN=kube-apiserver "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost,IP:10.0.0.1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
  issue admin "/O=system:masters/CN=kinto-demo-admin" "$client"
  issue kube-controller-manager /CN=system:kube-controller-manager "$client"
  issue kube-scheduler /CN=system:kube-scheduler "$client"
  # Signs and verifies service-account tokens.
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$pki/sa.key"
  openssl pkey -in "$pki/sa.key" -pubout -out "$pki/sa.pub"
}

# write_kubeconfig FILE USER: a kubeconfig that authenticates with the client certificate of USER.
write_kubeconfig() {
  cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: local
  cluster:
    server: https://127.0.0.1:$apiserver_port
    certificate-authority-data: $(base64 <"$pki/ca.crt" | tr -d '\n')
users:
- name: $2
  user:
    client-certificate-data: $(base64 <"$pki/$2.crt" | tr -d '\n')
    client-key-data: $(base64 <"$pki/$2.key" | tr -d '\n')
contexts:
- name: local
  context:
    cluster: local
    user: $2
current-context: local
EOF
  chmod 600 "$1"
}

# start NAME ARGS...: runs a component in the background, in its own session so that a Ctrl-C
# in the terminal reaches the script that will call `down`, not the components.
start() {
  local name=$1
  shift
  setsid "$assets/$name" "$@" </dev/null >"$dir/logs/$name.log" 2>&1 &
  echo $! >"$dir/pids/$name.pid"
}

kubectl() {
  "$assets/kubectl" --kubeconfig "$dir/kubeconfig" --request-timeout=5s "$@"
}

# fail COMPONENT MESSAGE: explains why `up` failed with the end of the component's log.
fail() {
  {
    echo "local-cluster: $2"
    echo "--- last lines of $dir/logs/$1.log:"
    tail -n 25 "$dir/logs/$1.log"
    if [ "$1" = kube-apiserver ]; then
      echo "--- readiness checks of the API server:"
      kubectl get --raw '/readyz?verbose' 2>&1 | grep -v ' ok$' || true
    fi
  } >&2
  exit 1
}

# abort_up, on any failure or interruption of `up`: stops what was started, keeps the logs.
abort_up() {
  local rc=$?
  # An interruption can land in a command whose stderr goes elsewhere (/dev/null, a log), and
  # the trap then runs with that redirection: speak on the stderr `up` started with.
  exec 2>&3
  stop_all
  echo "local-cluster: up failed; logs are kept in $dir/logs, remove them with: $0 down $dir" >&2
  exit "$rc"
}

wait_ready() {
  local deadline=$((SECONDS + ready_timeout)) name status waiting
  while :; do
    for name in "${components[@]}"; do
      running "$name" && continue
      # The components are children of this script: wait gives how they ended.
      status=0
      wait "$(<"$dir/pids/$name.pid")" || status=$?
      if ((status > 128)); then
        fail "$name" "$name was killed by SIG$(kill -l $((status - 128))) during start-up"
      fi
      fail "$name" "$name exited with status $status during start-up"
    done
    if ! kubectl get --raw /readyz >/dev/null 2>&1; then
      waiting=kube-apiserver
    elif ! kubectl -n default get serviceaccount default >/dev/null 2>&1; then
      # The service-account controller of kube-controller-manager creates it: its existence
      # shows that the controllers run.
      waiting=kube-controller-manager
    else
      return 0
    fi
    ((SECONDS < deadline)) || fail "$waiting" "not ready after $ready_timeout s, waiting for $waiting"
    sleep 0.5
  done
}

up() {
  local start_time=${EPOCHREALTIME//[!0-9]/} b ports elapsed
  for b in "${components[@]}" kubectl; do
    [ -x "$assets/$b" ] || die "missing $assets/$b: build it with 'make kube-binaries'"
  done
  for b in openssl python3 setsid; do
    command -v "$b" >/dev/null || die "$b is required"
  done

  if [ -d "$dir" ] && [ -n "$(ls -A "$dir")" ]; then
    dir=$(cd "$dir" && pwd -P)
    [ -e "$dir/$marker" ] || die "$dir exists and was not made by $0: choose another directory"
    for b in "${components[@]}"; do
      ! running "$b" || die "a cluster is already running in $dir: stop it with '$0 down $dir'"
    done
    # Left over by an `up` that failed, or by processes that were killed: start afresh.
    rm -rf "$dir"
  fi
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd -P)
  touch "$dir/$marker"
  pki=$dir/pki
  mkdir -p "$pki" "$dir/logs" "$dir/pids" "$dir/flexvolume"
  exec 3>&2
  trap abort_up EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM

  # Ask the kernel for free ports on 127.0.0.1, all held open together so that they differ.
  read -ra ports < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(3)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))')
  [ ${#ports[@]} -eq 3 ] || die "could not pick free ports on 127.0.0.1"
  etcd_port=${ports[0]} etcd_peer_port=${ports[1]} apiserver_port=${ports[2]}
  cat >"$dir/ports.env" <<EOF
ETCD_CLIENT_PORT=$etcd_port
ETCD_PEER_PORT=$etcd_peer_port
APISERVER_PORT=$apiserver_port
APISERVER_URL=https://127.0.0.1:$apiserver_port
EOF

  make_pki 2>"$dir/logs/openssl.log"
  write_kubeconfig "$dir/kubeconfig" admin
  write_kubeconfig "$dir/kube-controller-manager.kubeconfig" kube-controller-manager
  write_kubeconfig "$dir/kube-scheduler.kubeconfig" kube-scheduler

  # --unsafe-no-fsync: this data is thrown away, and fsync dominates etcd's latency on slow disks.
  # etcd creates its --data-dir itself, with the 0700 mode it insists on.
  start etcd --name default --data-dir "$dir/etcd" --unsafe-no-fsync \
    --listen-client-urls "http://127.0.0.1:$etcd_port" \
    --advertise-client-urls "http://127.0.0.1:$etcd_port" \
    --listen-peer-urls "http://127.0.0.1:$etcd_peer_port" \
    --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer_port" \
    --initial-cluster "default=http://127.0.0.1:$etcd_peer_port"
  # --endpoint-reconciler-type none: the endpoints of the "kubernetes" Service would be the
  # advertise address, and a loopback one is invalid there (an error every 10 s); no pod needs it.
  start kube-apiserver \
    --etcd-servers "http://127.0.0.1:$etcd_port" \
    --bind-address 127.0.0.1 --secure-port "$apiserver_port" --advertise-address 127.0.0.1 \
    --service-cluster-ip-range 10.0.0.0/24 \
    --authorization-mode Node,RBAC \
    --client-ca-file "$pki/ca.crt" \
    --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
    --service-account-issuer https://kubernetes.default.svc \
    --service-account-key-file "$pki/sa.pub" \
    --service-account-signing-key-file "$pki/sa.key" \
    --allow-privileged=false \
    --kubelet-preferred-address-types InternalIP,Hostname \
    --endpoint-reconciler-type none
  # --secure-port=0 (here and for the scheduler): no metrics endpoint, which would otherwise bind
  # a fixed port on every address; --flex-volume-plugin-dir keeps it from writing under /usr/libexec.
  start kube-controller-manager \
    --kubeconfig "$dir/kube-controller-manager.kubeconfig" \
    --secure-port=0 --leader-elect=false \
    --flex-volume-plugin-dir "$dir/flexvolume" \
    --use-service-account-credentials \
    --service-account-private-key-file "$pki/sa.key" \
    --root-ca-file "$pki/ca.crt" \
    --cluster-signing-cert-file "$pki/ca.crt" --cluster-signing-key-file "$pki/ca.key"
  start kube-scheduler \
    --kubeconfig "$dir/kube-scheduler.kubeconfig" --secure-port=0 --leader-elect=false

  wait_ready
  trap - EXIT INT TERM
  elapsed=$((${EPOCHREALTIME//[!0-9]/} - start_time))
  printf 'local-cluster: ready in %d.%01d s: API server https://127.0.0.1:%s\n' \
    $((elapsed / 1000000)) $((elapsed / 100000 % 10)) "$apiserver_port"
  echo "local-cluster: export KUBECONFIG=$dir/kubeconfig"
}

case $action in
up) up ;;
down) down ;;
*) usage ;;
esac
