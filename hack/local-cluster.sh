#!/usr/bin/env bash
# Starts and stops a local single-node Kubernetes cluster that runs pods: the control plane
# (etcd, kube-apiserver, kube-controller-manager, kube-scheduler) and a node (containerd, kubelet,
# kube-proxy, a CNI bridge), from the binaries hack/build-kube-binaries.sh builds and Debian's
# containerd, runc and CNI plugins; then CoreDNS, a local volume provisioner and a NetworkPolicy
# enforcer in it, from the images hack/build-images.sh builds (no registry is reachable here:
# images are imported).
#
# The node is a process tree in namespaces of its own, as a kind node is a container: its own
# PIDs (its init is PID 1; when it ends, the kernel ends every process and container of the node),
# its own network (iptables rules, routes, bridge, conntrack and sysctls live and die there), and
# its own mounts, with /run, /var/lib and /var/log bound to DIR/node/ so that kubelet's and
# containerd's fixed paths land in DIR. Tearing it down is killing its init and removing DIR. What
# the host sees while it runs: the link kinto-lc0, the cgroups /sys/fs/cgroup/*/kinto-local-cluster.
#
#   10.255.0.1/30  the node (eth0 in its namespace): the API server at :6443, kubelet, the address
#                  pods reach the node at; 10.255.0.2 is the host's end (kinto-lc0), so that
#                  kubectl on the host reaches the API server. The node has no other route: no
#                  packet of the cluster leaves the machine.
#   10.244.0.0/24  pods, on the node's bridge;  10.0.0.0/24 Services (kube-dns 10.0.0.10).
#
# Usage: hack/local-cluster.sh up DIR        start; DIR holds all state and DIR/kubeconfig (admin)
#        hack/local-cluster.sh down DIR      end the node's processes and remove DIR
#        hack/local-cluster.sh status DIR    exit status 0 when the cluster in DIR runs
#        hack/local-cluster.sh images DIR    (re)import the images into the running cluster
#        hack/local-cluster.sh exec DIR CMD...  run CMD in the node's network namespace, where
#                                            Service and pod IPs are reachable (hack/e2e.sh runs
#                                            the tests so)
#        hack/local-cluster.sh cidrs DIR     print the pod and Service ranges, comma-separated
#                                            (the operator's --cluster-cidrs)
# Env:   KUBE_ASSETS (default bin/k8s/v1.36.5 of the repository)
#        LOCAL_CLUSTER_IMAGES  directory of image archives and images.txt ("file ref" per line),
#                              all imported at `up` (default bin/images of the repository)
#        LOCAL_CLUSTER_ADDONS  manifests of hack/local-cluster/ applied at `up` (default
#                              "coredns local-path-storage")
#        LOCAL_CLUSTER_SNAPSHOTTER  containerd snapshotter (default overlayfs)
#        LOCAL_CLUSTER_TMPFS   1: containerd's images and containers in memory (about 1.5 GiB with
#                              the project's images; images in 20 s instead of 25 to 50); 0: on
#                              disk; default 1 where at least 8 GiB of memory are available
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
assets=${KUBE_ASSETS:-$root/bin/k8s/v1.36.5}
images_dir=${LOCAL_CLUSTER_IMAGES:-$root/bin/images}
addons=${LOCAL_CLUSTER_ADDONS-coredns local-path-storage}
# Limits for each stage of `up` (measured here: a Ready node 8 to 14 s after `up` starts, CoreDNS
# 3 s later) and for the add-ons once applied.
ready_timeout=90
addons_timeout=120

node_name=kinto-local
node_ip=10.255.0.1
host_link=kinto-lc0
host_ip=10.255.0.2
pod_cidr=10.244.0.0/16
node_pod_cidr=10.244.0.0/24
service_cidr=10.0.0.0/24
dns_ip=10.0.0.10
# kubelet's pods go under this cgroup, which `up` creates and `down` removes.
cgroup=kinto-local-cluster
# Present in every DIR this script made: `down` removes only such a directory.
marker=.local-cluster
# The kernel settings kubelet wants (it sets those that differ), shown to it in the node's
# /proc/sys so that it leaves the host's alone.
kubelet_sysctls=(vm.overcommit_memory=1 vm.panic_on_oom=0 kernel.panic=10 kernel.panic_on_oops=1
  kernel.keys.root_maxkeys=1000000 kernel.keys.root_maxbytes=25000000)

usage() {
  echo "usage: $0 up|down|status|images DIR, or $0 exec DIR COMMAND..." >&2
  exit 2
}

die() {
  echo "local-cluster: $*" >&2
  exit 1
}

[ $# -ge 2 ] || usage
action=$1
dir=$2
shift 2

kubectl() {
  "$assets/kubectl" --kubeconfig "$dir/kubeconfig" --cache-dir "$dir/kubectl-cache" --request-timeout=5s "$@"
}

ctr_() {
  ctr --address "$dir/node/run/containerd/containerd.sock" -n k8s.io "$@"
}

# node_pid: the host PID of the node's init, when it runs (DIR/node.pid also holds its PID
# namespace, so that a recycled PID is never taken for it).
node_pid() {
  local pid ns
  read -r pid ns 2>/dev/null <"$dir/node.pid" || return 1
  [ "$(readlink "/proc/$pid/ns/pid" 2>/dev/null)" = "$ns" ] && echo "$pid"
}

# until_gone WHAT COMMAND...: waits up to 30 s for COMMAND to fail.
until_gone() {
  local what=$1 deadline=$((SECONDS + 30))
  shift
  while "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || die "$what still there 30 s after the node was killed"
    sleep 0.1
  done
}

# cgroups_left: true while kubelet's cgroups remain, each removed (deepest first) when empty.
cgroups_left() {
  local path
  for path in /sys/fs/cgroup/*/"$cgroup"; do
    [ -d "$path" ] || continue
    find "$path" -depth -type d -delete 2>/dev/null
    [ ! -d "$path" ] || return 0
  done
  return 1
}

# teardown: ends the node and removes what the host kept of it; DIR itself is kept.
teardown() {
  local pid
  # The kernel kills every process of a PID namespace whose init dies, containers included, and
  # the init is gone only once they all are; their mounts and network namespaces go with them.
  if pid=$(node_pid); then
    kill -KILL "$pid"
    until_gone "the node's init" node_pid
  fi
  # The network namespace (and the link with it) is freed just after.
  until_gone "link $host_link of $dir" grep -qxF "$dir" "/sys/class/net/$host_link/ifalias"
  until_gone "cgroups /sys/fs/cgroup/*/$cgroup" cgroups_left
}

down() {
  if [ ! -d "$dir" ]; then
    echo "local-cluster: nothing in $dir, already down"
    return 0
  fi
  dir=$(cd "$dir" && pwd -P)
  [ -e "$dir/$marker" ] || die "$dir was not made by $0: not touching it"
  teardown
  rm -rf --one-file-system "$dir"
  echo "local-cluster: stopped, removed $dir"
}

status() {
  local pid ns
  [ -d "$dir" ] || die "no cluster in $dir"
  dir=$(cd "$dir" && pwd -P)
  pid=$(node_pid) || die "the node of $dir is not running"
  ns=$(stat -L -c %i "/proc/$pid/ns/pid")
  ps -e -o pidns=,rss= | awk -v ns="$ns" '$1 == ns {n++; kb += $2}
    END {printf "node running: %d processes, %d MiB resident\n", n, kb / 1024}'
  kubectl get --raw /readyz >/dev/null || die "the API server of $dir does not answer"
  echo "export KUBECONFIG=$dir/kubeconfig"
}

# node: the node's init, run by `up` as PID 1 of new PID, network and mount namespaces: makes
# its file system and network, starts the components, and ends (and with it the node) when one
# of them does. Logs in DIR/logs/node.log.
node() {
  local path pid pki=$dir/pki
  local -A component=()
  set -E
  trap 'echo "node: \"$BASH_COMMAND\" failed"' ERR
  for path in run var/lib var/log; do
    mkdir -p "$dir/node/$path"
    mount --bind "$dir/node/$path" "/$path"
  done
  mkdir -p /var/lib/containerd "$dir/node/sysctl"
  [ "$LOCAL_CLUSTER_TMPFS" = 0 ] || mount -t tmpfs -o mode=0711 containerd /var/lib/containerd
  for path in "${kubelet_sysctls[@]}"; do
    echo "${path#*=}" >"$dir/node/sysctl/${path%=*}"
    path=${path%=*}
    mount --bind "$dir/node/sysctl/$path" "/proc/sys/${path//.//}"
  done
  ip link set lo up
  until ip link show eth0 >/dev/null 2>&1; do sleep 0.05; done
  ip addr add "$node_ip/30" dev eth0
  ip link set eth0 up
  # The node's connections to Service IPs need a route before kube-proxy's DNAT rewrites them: a
  # bridge without ports (this kernel has no dummy links), where what DNAT left goes nowhere.
  ip link add name services type bridge
  ip link set services up
  ip route add "$service_cidr" dev services src "$node_ip"

  # start NAME ARGS...: a component in the background, its output in DIR/logs/NAME.log.
  start() {
    local bin=$assets/$1
    [ "$1" != containerd ] || bin=containerd
    "$bin" "${@:2}" </dev/null >"$dir/logs/$1.log" 2>&1 &
    component[$!]=$1
  }
  # until_ready COMMAND...: until COMMAND succeeds, while every component runs.
  until_ready() {
    until "$@" >/dev/null 2>&1; do
      for pid in "${!component[@]}"; do
        kill -0 "$pid" 2>/dev/null || ended "$pid"
      done
      sleep 0.1
    done
  }
  ended() {
    echo "node: ${component[$1]} ended; the last lines of its log:"
    tail -n 25 "$dir/logs/${component[$1]}.log"
    exit 1
  }

  # --unsafe-no-fsync: this data is thrown away, and fsync dominates etcd's latency on slow disks.
  start etcd --data-dir "$dir/etcd" --unsafe-no-fsync
  # Kubelets are reached at their InternalIP (their names resolve nowhere).
  start kube-apiserver --etcd-servers http://127.0.0.1:2379 --advertise-address "$node_ip" \
    --service-cluster-ip-range "$service_cidr" \
    --authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction --allow-privileged=false \
    --client-ca-file "$pki/ca.crt" --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
    --kubelet-client-certificate "$pki/apiserver-kubelet-client.crt" --kubelet-client-key "$pki/apiserver-kubelet-client.key" \
    --kubelet-preferred-address-types InternalIP,Hostname \
    --service-account-issuer https://kubernetes.default.svc \
    --service-account-key-file "$pki/sa.pub" --service-account-signing-key-file "$pki/sa.key"
  start containerd --config "$dir/containerd.toml"
  until_ready ctr version
  start kubelet --config "$dir/kubelet.yaml" --kubeconfig "$dir/kubelet.conf" \
    --hostname-override "$node_name" --node-ip "$node_ip"
  # Started before the API server is ready, the controllers' first requests are refused (RBAC's
  # roles are not there yet) and their retries back off for seconds.
  until_ready kubectl get --raw /readyz
  # The node's podCIDR (the first /24 of the pod range) matches the CNI configuration's.
  start kube-controller-manager --kubeconfig "$dir/controller-manager.conf" --leader-elect=false \
    --use-service-account-credentials --service-account-private-key-file "$pki/sa.key" \
    --root-ca-file "$pki/ca.crt" --cluster-signing-cert-file "$pki/ca.crt" --cluster-signing-key-file "$pki/ca.key" \
    --allocate-node-cidrs --cluster-cidr "$pod_cidr" --node-cidr-mask-size 24 \
    --service-cluster-ip-range "$service_cidr" --flex-volume-plugin-dir /var/lib/kubelet/volume-plugins \
    --kube-api-qps 100 --kube-api-burst 200
  start kube-scheduler --kubeconfig "$dir/scheduler.conf" --leader-elect=false
  start kube-proxy --config "$dir/kube-proxy.yaml"
  echo "node: every component started"
  # As PID 1, this shell also reaps the orphans the node makes (containerd's shims).
  wait -n -p pid || true
  ended "$pid"
}

# make_pki: the certificates and kubeconfigs, as kubeadm makes them for a control-plane node.
make_pki() {
  local phase
  cat >"$dir/kubeadm.yaml" <<EOF
apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
localAPIEndpoint: {advertiseAddress: $node_ip, bindPort: 6443}
nodeRegistration: {name: $node_name, criSocket: unix:///run/containerd/containerd.sock}
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
kubernetesVersion: $("$assets/kubeadm" version -o short)
certificatesDir: $dir/pki
encryptionAlgorithm: ECDSA-P256
networking: {serviceSubnet: $service_cidr, podSubnet: $pod_cidr}
EOF
  for phase in ca apiserver apiserver-kubelet-client sa; do
    "$assets/kubeadm" init phase certs "$phase" --config "$dir/kubeadm.yaml"
  done
  for phase in super-admin kubelet controller-manager scheduler; do
    "$assets/kubeadm" init phase kubeconfig "$phase" --config "$dir/kubeadm.yaml" --kubeconfig-dir "$dir"
  done
  # super-admin.conf is in system:masters; admin.conf would need the binding `kubeadm init` makes.
  mv "$dir/super-admin.conf" "$dir/kubeconfig"
  # Bound to the built-in role system:node-proxier.
  "$assets/kubeadm" kubeconfig user --config "$dir/kubeadm.yaml" --client-name system:kube-proxy >"$dir/kube-proxy.conf"
}

write_node_configs() {
  mkdir -p "$dir/cni"
  # Pod IPs from host-local in this node's /24 on its bridge, NAT for what leaves the pod range,
  # hairpin so that a pod reaches itself through a Service, portmap for hostPort.
  cat >"$dir/cni/10-kinto-local-cluster.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "kinto-local-cluster",
  "plugins": [
    {
      "type": "bridge",
      "isGateway": true,
      "ipMasq": true,
      "hairpinMode": true,
      "ipam": {"type": "host-local", "ranges": [[{"subnet": "$node_pod_cidr"}]], "routes": [{"dst": "0.0.0.0/0"}]}
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF

  # restrict_oom_score_adj: root here lacks CAP_SYS_RESOURCE, so runc cannot lower a process's
  # OOM score; without it every sandbox fails with "can't get final child's PID from pipe".
  # enable_unprivileged_ports: CoreDNS binds port 53 as its non-root user (containerd 2.x's
  # default). No registry is reachable from the node: an image not imported fails at once.
  cat >"$dir/containerd.toml" <<EOF
version = 2
[plugins."io.containerd.internal.v1.opt"]
  path = "/var/lib/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$(image_ref '/pause:')"
  restrict_oom_score_adj = true
  enable_unprivileged_ports = true
  enable_unprivileged_icmp = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "$snapshotter"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$dir/cni"
EOF

  # cgroupfs, cgroup v1 accepted: no systemd, cgroup v1 on this machine. resolvConf "": pods
  # with dnsPolicy Default (CoreDNS) get no name server, rather than the host's. Eviction only
  # when really full, and no image garbage collection: images cannot be pulled again here.
  cat >"$dir/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
containerRuntimeEndpoint: unix:///run/containerd/containerd.sock
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $dir/pki/ca.crt}
authorization: {mode: Webhook}
cgroupDriver: cgroupfs
cgroupRoot: /$cgroup
failCgroupV1: false
failSwapOn: false
clusterDNS: [$dns_ip]
clusterDomain: cluster.local
resolvConf: ""
volumePluginDir: /var/lib/kubelet/volume-plugins
evictionHard: {memory.available: 100Mi, nodefs.available: "1%", nodefs.inodesFree: "1%", imagefs.available: "1%", imagefs.inodesFree: "1%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
EOF

  # conntrack: 0 leaves the kernel's values alone (the table's size is the host's).
  cat >"$dir/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $dir/kube-proxy.conf}
hostnameOverride: $node_name
mode: iptables
clusterCIDR: $pod_cidr
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
EOF
}

# start_node: the node's init in namespaces of its own (in its own session, so that a Ctrl-C
# reaches `up`, which then kills the node), and the link between it and the host.
start_node() {
  local pid='' _
  LOCAL_CLUSTER_TMPFS=$tmpfs KUBE_ASSETS=$assets setsid unshare --pid --net --mount --fork --mount-proc \
    "$0" node "$dir" </dev/null >"$dir/logs/node.log" 2>&1 3>&- &
  for _ in {1..100}; do
    pid=$(cat "/proc/$!/task/$!/children" 2>/dev/null) && [ -n "$pid" ] && break
    sleep 0.05
  done
  [ -n "$pid" ] || fail "the node did not start" node
  pid=${pid%% *}
  echo "$pid $(readlink "/proc/$pid/ns/pid")" >"$dir/node.pid"
  ip link add name "$host_link" type veth peer name eth0 netns "$pid"
  ip link set "$host_link" alias "$dir"
  ip addr add "$host_ip/30" dev "$host_link"
  ip link set "$host_link" up
}

# fail MESSAGE LOG: explains why `up` failed, with the end of DIR/logs/LOG.log and of the node's.
fail() {
  {
    echo "local-cluster: $1"
    echo "--- last lines of $dir/logs/$2.log:"
    tail -n 25 "$dir/logs/$2.log"
    [ "$2" = node ] || { echo "--- last lines of $dir/logs/node.log:"; tail -n 5 "$dir/logs/node.log"; }
    if kubectl get --raw /readyz >/dev/null 2>&1; then
      echo "--- pods of kube-system:"
      kubectl -n kube-system get pods -o wide 2>&1 || true
      echo "--- recent events:"
      kubectl get events -A --sort-by=.lastTimestamp 2>&1 | tail -n 15 || true
    fi
  } >&2
  exit 1
}

# await WHAT SECONDS LOG COMMAND...: until COMMAND succeeds; fails `up` when the node ends or
# after SECONDS, showing DIR/logs/LOG.log.
await() {
  local what=$1 timeout=$2 log=$3 deadline=$((SECONDS + $2))
  shift 3
  until "$@" >/dev/null 2>&1; do
    node_pid >/dev/null || fail "the node ended while waiting for $what" node
    ((SECONDS < deadline)) || fail "no $what after $timeout s" "$log"
    sleep 0.2
  done
}

abort_up() {
  local rc=$?
  # An interruption can land in a command whose stderr goes elsewhere (/dev/null, a log), and
  # the trap then runs with that redirection: speak on the stderr `up` started with.
  exec 2>&3
  trap - EXIT INT TERM
  [ -z "${import_pid:-}" ] || kill "$import_pid" 2>/dev/null || true
  teardown
  echo "local-cluster: up failed; logs are kept in $dir/logs, remove them with: $0 down $dir" >&2
  exit "$rc"
}

# image_ref PATTERN: the ref of images.txt that matches PATTERN (an extended regex).
image_ref() {
  local ref
  ref=$(awk -v p="$1" '$2 ~ p {print $2; exit}' "$images_dir/images.txt")
  [ -n "$ref" ] || die "no image matching '$1' in $images_dir/images.txt: build it with hack/build-images.sh"
  echo "$ref"
}

# render_addons: the manifests of hack/local-cluster/ into DIR/addons, their placeholders filled
# in; first_refs: the images they run, and the sandbox image.
render_addons() {
  local name text p ref
  mkdir -p "$dir/addons"
  first_refs=("$(image_ref '/pause:')")
  for name in $addons; do
    [ -f "$root/hack/local-cluster/$name.yaml" ] || die "no addon manifest hack/local-cluster/$name.yaml"
    text=$(<"$root/hack/local-cluster/$name.yaml")
    text=${text//@DIR@/$dir}
    text=${text//@DNS_IP@/$dns_ip}
    for p in COREDNS_IMAGE=/coredns/coredns: LOCAL_PATH_IMAGE=/local-path-provisioner: HELPER_IMAGE=/debian:; do
      [[ $text == *"@${p%%=*}@"* ]] || continue
      ref=$(image_ref "${p#*=}")
      text=${text//"@${p%%=*}@"/$ref}
      first_refs+=("$ref")
    done
    printf '%s\n' "$text" >"$dir/addons/$name.yaml"
  done
}

# import_images first|rest|all: the archives of images.txt into the node's containerd: those of
# first_refs, the others, or all; checked by name. Two at a time: an import is mostly CPU
# (hashing and decompressing), and two of them take a third less time than one after the other.
import_images() {
  local file ref names first pids=()
  while read -r file ref; do
    [ -n "$file" ] || continue
    first=no
    ! printf '%s\n' "${first_refs[@]}" | grep -qxF "$ref" || first=yes
    case $1-$first in first-no | rest-yes) continue ;; esac
    [ -s "$images_dir/$file" ] || die "missing $images_dir/$file (for $ref): build it with hack/build-images.sh"
    if ((${#pids[@]} == 2)); then
      wait "${pids[0]}" || die "importing an image failed: $(tail -n 5 "$dir/logs/import.log")"
      pids=("${pids[1]}")
    fi
    ctr_ images import --snapshotter "$snapshotter" "$images_dir/$file" >>"$dir/logs/import.log" 2>&1 &
    pids+=($!)
  done <"$images_dir/images.txt"
  for ref in "${pids[@]}"; do
    wait "$ref" || die "importing an image failed: $(tail -n 5 "$dir/logs/import.log")"
  done
  [ "$1" != first ] || return 0
  names=$(ctr_ images ls -q)
  while read -r file ref; do
    [ -z "$ref" ] || grep -qxF "$ref" <<<"$names" ||
      die "$images_dir/$file did not give the image $ref (it holds: $(tr '\n' ' ' <<<"$names"))"
  done <"$images_dir/images.txt"
}

# elapsed: seconds since `up` started, with one decimal.
elapsed() {
  local t=$((${EPOCHREALTIME//[!0-9]/} - start_time))
  printf '%d.%01d' $((t / 1000000)) $((t / 100000 % 10))
}

# first_imported: the images of the add-ons are in, or their import failed.
first_imported() {
  [ -e "$dir/logs/import-first.done" ] || ! kill -0 "$import_pid"
}

node_ready() {
  [ "$(kubectl get node "$node_name" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')" = True ]
}

# The NetworkPolicy enforcer has bound netfilter queue 98 (the manifest's --nfqueue-id), which it
# does once its caches are synced and its rules written: from then on policies hold.
policies_enforced() {
  awk '$1 == 98 {found = 1} END {exit !found}' "/proc/$(node_pid)/net/netfilter/nfnetlink_queue"
}

host_checks() {
  local b
  [ "$(id -u)" = 0 ] || die "must run as root: it runs containers in namespaces of their own"
  for b in etcd kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl kubeadm; do
    [ -x "$assets/$b" ] || die "missing $assets/$b: build it with 'make kube-binaries'"
  done
  for b in containerd containerd-shim-runc-v2 runc ctr ip iptables unshare setsid; do
    command -v "$b" >/dev/null || die "$b is required (hack/install-host-packages.sh installs it)"
  done
  for b in bridge host-local portmap loopback; do
    [ -x "/usr/lib/cni/$b" ] || die "missing /usr/lib/cni/$b: apt-get install containernetworking-plugins"
  done
  [ -e /proc/sys/net/bridge/bridge-nf-call-iptables ] ||
    die "a pod reaches a Service backed by a pod on the same bridge only with iptables on bridged traffic: modprobe br_netfilter"
  [ -f "$images_dir/images.txt" ] || die "no $images_dir/images.txt: build the images with hack/build-images.sh"
  [[ -d /sys/fs/cgroup/pids && -d /sys/fs/cgroup/memory ]] ||
    die "expected cgroup v1 hierarchies under /sys/fs/cgroup (this script configures cgroup v1)"
  if [ -e "/sys/class/net/$host_link" ]; then
    die "a local cluster already runs on this machine (link $host_link): stop it with '$0 down $(<"/sys/class/net/$host_link/ifalias")'"
  fi
  [ -z "$(ip route show "${node_ip%.*}.0/30")" ] || die "the host already routes ${node_ip%.*}.0/30"
}

up() {
  local path
  start_time=${EPOCHREALTIME//[!0-9]/}
  [[ $dir != *[[:space:]]* ]] || die "DIR must not contain white space"
  if [ -d "$dir" ] && [ -n "$(ls -A "$dir")" ]; then
    dir=$(cd "$dir" && pwd -P)
    [ -e "$dir/$marker" ] || die "$dir exists and was not made by $0: choose another directory"
    ! node_pid >/dev/null || die "a cluster is already running in $dir: stop it with '$0 down $dir'"
    # Left over by an `up` that failed, or by a node that was killed: start afresh.
    teardown
    rm -rf --one-file-system "$dir"
  fi
  host_checks
  mkdir -p "$dir/logs"
  dir=$(cd "$dir" && pwd -P)
  touch "$dir/$marker"
  case $dir/ in /run/* | /var/lib/* | /var/log/*) die "DIR cannot be under /run, /var/lib or /var/log, the node's own" ;; esac
  # Unix sockets (containerd's, reached from the host) must fit in 108 bytes.
  ((${#dir} <= 70)) || die "DIR $dir is too long (${#dir} characters, 70 at most: containerd's socket lives under it)"
  exec 3>&2
  trap abort_up EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM

  snapshotter=${LOCAL_CLUSTER_SNAPSHOTTER:-overlayfs}
  case ${LOCAL_CLUSTER_TMPFS:-auto} in
  auto) (($(awk '$1 == "MemAvailable:" {print $2}' /proc/meminfo) >= 8 * 1024 * 1024)) && tmpfs=1 || tmpfs=0 ;;
  0 | 1) tmpfs=$LOCAL_CLUSTER_TMPFS ;;
  *) die "LOCAL_CLUSTER_TMPFS must be 0 or 1" ;;
  esac
  render_addons
  make_pki >"$dir/logs/kubeadm.log" 2>&1 || die "kubeadm failed: $(tail -n 5 "$dir/logs/kubeadm.log")"
  write_node_configs
  for path in /sys/fs/cgroup/*/; do mkdir -p "$path$cgroup"; done
  start_node

  await containerd "$ready_timeout" containerd ctr_ version
  # In the background, those the add-ons run first.
  (import_images first && touch "$dir/logs/import-first.done" && import_images rest) 2>>"$dir/logs/import.log" &
  import_pid=$!
  await "ready API server" "$ready_timeout" kube-apiserver kubectl get --raw /readyz
  # The API server's certificate towards kubelets (logs, exec, port-forward) is in no group.
  kubectl create clusterrolebinding kube-apiserver-kubelet-client --clusterrole system:kubelet-api-admin \
    --user kube-apiserver-kubelet-client >>"$dir/logs/addons.log" 2>&1 || fail "binding the API server's kubelet client failed" addons
  await "imported images" "$ready_timeout" import first_imported
  [ -e "$dir/logs/import-first.done" ] || { wait "$import_pid" || fail "importing the images failed" import; }
  kubectl apply -f "$dir/addons" >>"$dir/logs/addons.log" 2>&1 || fail "applying the add-ons failed" addons
  await "Ready node" "$ready_timeout" kubelet node_ready
  node_ready=$(elapsed)
  # CoreDNS ready shows every part at work: controllers, scheduler, kubelet, the pod network,
  # kube-proxy, and a pod reaching the API server through the "kubernetes" Service.
  [[ " $addons " != *" coredns "* ]] || await "CoreDNS ready" "$addons_timeout" kubelet \
    kubectl -n kube-system wait --for condition=Available --timeout 1s deployment/coredns
  addons_ready=$(elapsed)
  wait "$import_pid" || fail "importing the images failed" import
  kubectl apply -f "$root/hack/local-cluster/network-policies.yaml" >>"$dir/logs/addons.log" 2>&1 ||
    fail "applying network-policies.yaml failed" addons
  await "NetworkPolicy enforcer bound to its queue" "$addons_timeout" kubelet policies_enforced
  trap - EXIT INT TERM
  printf 'local-cluster: node %s Ready in %s s, CoreDNS ready in %s s, %d images imported (%s) in %s s\n' "$node_name" \
    "$node_ready" "$addons_ready" "$(grep -c . "$images_dir/images.txt")" "$([ "$tmpfs" = 1 ] && echo "in memory" || echo "on disk")" "$(elapsed)"
  echo "local-cluster: API server https://$node_ip:6443; export KUBECONFIG=$dir/kubeconfig"
}

images() {
  [ -d "$dir" ] || die "no cluster in $dir"
  dir=$(cd "$dir" && pwd -P)
  node_pid >/dev/null || die "the node of $dir is not running: start the cluster with '$0 up $dir'"
  snapshotter=$(awk -F'"' '$1 ~ /^ *snapshotter = / {print $2; exit}' "$dir/containerd.toml")
  [ -f "$images_dir/images.txt" ] || die "no $images_dir/images.txt: build the images with hack/build-images.sh"
  first_refs=()
  import_images all
  echo "local-cluster: imported the $(grep -c . "$images_dir/images.txt") images of $images_dir/images.txt"
}

exec_in_node() {
  local pid
  [ $# -gt 0 ] || usage
  pid=$(node_pid) || die "the node of $dir is not running"
  exec nsenter --net="/proc/$pid/ns/net" -- "$@"
}

case $action in
up) up ;;
down) down ;;
status) status ;;
images) images ;;
exec) exec_in_node "$@" ;;
cidrs) echo "$pod_cidr,$service_cidr" ;;
node) node ;;
*) usage ;;
esac
