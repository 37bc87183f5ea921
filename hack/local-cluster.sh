#!/usr/bin/env bash
# Starts and stops a local single-node Kubernetes cluster that runs pods: the control plane
# (etcd, kube-apiserver, kube-controller-manager, kube-scheduler) and a node (containerd, kubelet,
# kube-proxy, a CNI bridge), from the binaries hack/build-kube-binaries.sh builds and Debian's
# containerd, runc and CNI plugins; then CoreDNS and a local volume provisioner in it, from the
# images hack/build-images.sh builds (no registry is reachable here: images are imported).
#
# Everything the cluster writes is under DIR, except what the kernel holds (interfaces, routes,
# iptables rules, cgroups, sysctls) and the few host paths kubelet and containerd insist on;
# `down` removes all of it and checks that nothing is left. Needs root. One such cluster per
# machine (it owns the addresses below); the control plane's ports are picked at `up` time.
#
#   10.255.0.1/32  on kinto-lc0 (a bridge without ports: the kernel has no dummy links): the node's
#                  IP, where kube-apiserver and kubelet listen and what the "kubernetes" Service
#                  points to, so pods reach the API server; nothing listens on eth0
#   10.244.0.0/16  pods (this node: 10.244.0.0/24 on the kinto-cni0 bridge); the rest unreachable
#   10.0.0.0/24    Services (kube-dns 10.0.0.10), routed to kinto-lc0 where kube-proxy's DNAT did
#                  not apply, and rejected there: no packet for these ranges leaves the machine,
#                  and pods' packets for anywhere else are refused, not forwarded
#
# Usage: hack/local-cluster.sh up DIR       start; DIR holds all state and DIR/kubeconfig (admin)
#        hack/local-cluster.sh down DIR     stop everything `up` started, undo what it changed on
#                                           the host, check, and remove DIR
#        hack/local-cluster.sh status DIR   exit status 0 when the cluster in DIR runs; prints its
#                                           processes and their memory
#        hack/local-cluster.sh images DIR   (re)import the images into the running cluster
# Env:   KUBE_ASSETS (default bin/k8s/v1.36.5 of the repository)
#        LOCAL_CLUSTER_IMAGES  directory of image archives and images.txt ("file ref" per line),
#                              all imported at `up` (default bin/images of the repository)
#        LOCAL_CLUSTER_ADDONS  manifests of hack/local-cluster/ applied at `up` (default
#                              "coredns local-path-storage")
#        LOCAL_CLUSTER_SNAPSHOTTER  containerd snapshotter (default overlayfs where the kernel
#                                   has it, else native)
#        LOCAL_CLUSTER_TMPFS   1: containerd's images and containers in memory, a tmpfs on
#                              DIR/containerd (about 1.5 GiB with the project's images; measured:
#                              images in 20 s instead of 25 to 50, `down` in 5 s instead of 13);
#                              0: on disk; default 1 where at least 8 GiB of memory are available
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
assets=${KUBE_ASSETS:-$root/bin/k8s/v1.36.5}
images_dir=${LOCAL_CLUSTER_IMAGES:-$root/bin/images}
addons=${LOCAL_CLUSTER_ADDONS-coredns local-path-storage}
# In the order of their start.
components=(etcd kube-apiserver containerd kubelet kube-controller-manager kube-scheduler kube-proxy)
# Present in every DIR this script made: `down` removes only such a directory.
marker=.local-cluster
# Limits for each stage of `up` (API server, node, controllers) and for CoreDNS to answer once
# applied; measured here: a Ready node 8 to 14 s after `up` starts, CoreDNS 3 s later.
ready_timeout=90
addons_timeout=120

node_name=kinto-local
node_link=kinto-lc0
node_ip=10.255.0.1
cni_bridge=kinto-cni0
cni_network=kinto-local-cluster
pod_cidr=10.244.0.0/16
node_pod_cidr=10.244.0.0/24
service_cidr=10.0.0.0/24
dns_ip=10.0.0.10
# What kubelet sets to its liking (it would refuse to start with protectKernelDefaults instead),
# and what pods need: all put back by `down`.
host_sysctls=(net.ipv4.ip_forward net.bridge.bridge-nf-call-iptables vm.overcommit_memory
  vm.panic_on_oom kernel.panic kernel.panic_on_oops kernel.keys.root_maxkeys kernel.keys.root_maxbytes)
# Host paths written despite every option pointing into DIR (found with `find / -newer`): kubelet's
# links to container logs and its device-plugin socket (fixed paths), libcni's result cache
# (go-cni in containerd 1.6 sets no cache dir), the shims' sockets (fixed under /run/containerd
# in containerd 1.6), libmount's lock directory. Removed by `down` when `up` created them (children
# first), emptied of this cluster's entries otherwise.
host_dirs=(/var/log/containers /var/lib/cni/results /var/lib/cni /var/lib/kubelet/device-plugins
  /var/lib/kubelet /run/containerd/s /run/containerd /run/mount)

usage() {
  echo "usage: $0 up|down|status|images DIR" >&2
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

# shims: the PIDs of the containerd shims of this cluster (their -address names DIR).
shims() {
  ps -ww -eo pid=,args= | awk -v a="$dir/containerd.sock" \
    '$2 ~ /containerd-shim/ { for (i = 3; i <= NF; i++) if ($i == a) { print $1; next } }'
}

# link_alias LINK: the alias of a network link (up names its links after DIR), empty if none.
link_alias() {
  cat "/sys/class/net/$1/ifalias" 2>/dev/null || true
}

# host_ours: true unless the node's link is another cluster's (its alias names another DIR):
# then the host's network, rules, cgroups and settings are that cluster's, and this teardown
# leaves them alone (only possible when a teardown was cut short and another cluster started).
host_ours() {
  ! ip link show "$node_link" >/dev/null 2>&1 || [ "$(link_alias "$node_link")" = "$dir" ]
}

# pod_pids: the processes in the pods' cgroups (every container process of this cluster: `up`
# refuses to start where kubepods cgroups exist).
pod_pids() {
  [ -d /sys/fs/cgroup/pids/kubepods ] || return 0
  find /sys/fs/cgroup/pids/kubepods -name cgroup.procs -exec cat {} + 2>/dev/null | sort -un
}

# kill_containers: every container of the cluster, through runc (containerd and its shims may
# already be gone), then whatever is left in the pods' cgroups.
kill_containers() {
  local runc_root=$dir/runc/k8s.io id pid
  if [ -d "$runc_root" ]; then
    for id in $(runc --root "$runc_root" list -q 2>/dev/null); do
      runc --root "$runc_root" delete --force "$id" >/dev/null 2>&1 || true
    done
  fi
  host_ours || return 0
  for pid in $(pod_pids); do
    kill -KILL "$pid" 2>/dev/null || true
  done
}

# kill_shims: the shims outlive containerd; their containers are dead by now.
kill_shims() {
  local pid _
  for _ in {1..20}; do
    pid=$(shims)
    [ -n "$pid" ] || return 0
    # shellcheck disable=SC2086 # one PID per word
    kill -KILL $pid 2>/dev/null || true
    sleep 0.2
  done
  die "containerd shims of $dir survived SIGKILL: $(shims | tr '\n' ' ')"
}

# remove_shim_sockets: the sockets of the killed shims, which containerd 1.6 puts in
# /run/containerd/s whatever its configuration, named by the SHA-256 of containerd's address, the
# namespace and the task (the shim of a pod serves all of its containers under the sandbox's ID).
remove_shim_sockets() {
  local task
  for task in "$dir"/containerd/state/io.containerd.runtime.v2.task/k8s.io/*; do
    [ -d "$task" ] || continue
    rm -f "/run/containerd/s/$(printf '%s' "$dir/containerd.sock/k8s.io/${task##*/}" | sha256sum | cut -d' ' -f1)"
  done
}

# unmount_all: the container root file systems, shm, network namespaces and volume mounts under
# DIR, deepest first (lazily: a busy one goes as soon as it is free), so that nothing under DIR
# is a mount when it is removed.
unmount_all() {
  local m _
  for _ in {1..5}; do
    m=$(awk -v d="$dir/" 'index($5, d) == 1 {print $5}' /proc/self/mountinfo | sort -r)
    [ -n "$m" ] || return 0
    while read -r m; do
      umount -l "$m" 2>/dev/null || true
    done <<<"$m"
  done
  die "could not unmount everything under $dir: $(awk -v d="$dir/" 'index($5, d) == 1 {print $5}' /proc/self/mountinfo | tr '\n' ' ')"
}

# iptables_clean: the rules and chains kube-proxy, kubelet and the CNI plugins made (KUBE-*,
# CNI-*, and the rules of the built-in chains that jump to them), and our own (commented
# kinto-local-cluster), in both families. `up` refused to start if any KUBE-*/CNI-* chain
# existed, so these are all this cluster's.
iptables_clean() {
  local ipt table chain rules i chains
  for ipt in iptables ip6tables; do
    command -v "$ipt" >/dev/null || continue
    for table in filter nat mangle raw; do
      $ipt -w -t "$table" -S >/dev/null 2>&1 || continue
      for chain in INPUT OUTPUT FORWARD PREROUTING POSTROUTING; do
        mapfile -t rules < <($ipt -w -t "$table" -S "$chain" 2>/dev/null | grep '^-A ' || true)
        # By number, from the last: the rule texts need no quoting that way.
        for ((i = ${#rules[@]}; i >= 1; i--)); do
          if [[ ${rules[i - 1]} =~ -j\ (KUBE|CNI)- || ${rules[i - 1]} == *kinto-local-cluster* ]]; then
            $ipt -w -t "$table" -D "$chain" "$i"
          fi
        done
      done
      chains=$($ipt -w -t "$table" -S | awk '$1 == "-N" && $2 ~ /^(KUBE|CNI)-/ {print $2}')
      for chain in $chains; do $ipt -w -t "$table" -F "$chain"; done
      for chain in $chains; do $ipt -w -t "$table" -X "$chain"; done
    done
  done
}

# host_state KIND: the values recorded by `up` in DIR/host-state ("KIND [VALUE...]" lines).
host_state() {
  [ -f "$dir/host-state" ] || return 0
  awk -v k="$1" '$1 == k {$1 = ""; print substr($0, 2)}' "$dir/host-state"
}

# recorded KIND: true when `up` recorded a change of that kind.
recorded() {
  [ -f "$dir/host-state" ] && awk -v k="$1" '$1 == k {found = 1} END {exit !found}' "$dir/host-state"
}

# teardown: stops every process, then undoes on the host what `up` did, in the reverse order;
# each step acts only on what is this cluster's and does nothing when it is already undone, so
# that it is safe after a failed `up` or a second time. DIR itself is kept.
teardown() {
  local name value path link
  # No kubelet to restart containers, no kube-proxy to rewrite rules, while they go.
  stop kube-proxy
  stop kubelet
  kill_containers
  stop containerd
  kill_shims
  remove_shim_sockets
  for name in kube-scheduler kube-controller-manager kube-apiserver etcd; do
    stop "$name"
  done
  # Host files of this cluster: kubelet's links to its pods' logs, libcni's cache of the pods'
  # network results (eth0 on our network, lo) per sandbox (listed in containerd's state, which
  # may be on the tmpfs unmounted next).
  if [ -d /var/log/containers ]; then
    find /var/log/containers -maxdepth 1 -type l -lname "$dir/*" -delete
  fi
  for path in "$dir"/containerd/state/io.containerd.grpc.v1.cri/sandboxes/*; do
    [ -d "$path" ] || continue
    rm -f "/var/lib/cni/results/$cni_network-${path##*/}-eth0" "/var/lib/cni/results/cni-loopback-${path##*/}-lo"
  done
  unmount_all

  if ! host_ours; then
    echo "local-cluster: $node_link is $(link_alias "$node_link")'s: the host's network and settings are left to it" >&2
    return 0
  fi

  # Network: the pods' veths (their peers went with the pods' namespaces), the bridge, the
  # rules, the routes, the node's link (its address and route go with it).
  if recorded link; then
    if ip link show "$cni_bridge" >/dev/null 2>&1; then
      for link in $(ip -o link show master "$cni_bridge" | awk -F': ' '{sub(/@.*/, "", $2); print $2}'); do
        ip link del "$link" 2>/dev/null || true
      done
      ip link del "$cni_bridge"
    fi
  fi
  ! recorded iptables || iptables_clean
  # Killed rather than stopped, the NetworkPolicy enforcer leaves its table, whose queue would drop
  # the next cluster's connections at the same pod addresses.
  if recorded iptables && command -v nft >/dev/null; then
    nft delete table inet kube-network-policies 2>/dev/null || true
  fi
  while read -r value; do
    # shellcheck disable=SC2086 # a route is several words
    [ -z "$value" ] || ip route del $value 2>/dev/null || true
  done < <(host_state route)
  if recorded link && [ "$(link_alias "$node_link")" = "$dir" ]; then
    ip link del "$node_link"
  fi
  # Connections tracked for the ranges would meet the next cluster's pods at the same addresses.
  if command -v conntrack >/dev/null; then
    for value in "$pod_cidr" "$service_cidr"; do
      conntrack -D -s "$value" >/dev/null 2>&1 || true
      conntrack -D -d "$value" >/dev/null 2>&1 || true
    done
  fi

  # The cgroups kubelet and runc made, deepest first (empty by now: their processes are dead).
  if recorded cgroups; then
    for path in /sys/fs/cgroup/*/kubepods; do
      [ -d "$path" ] || continue
      find "$path" -depth -type d -exec rmdir {} + 2>/dev/null || true
    done
  fi

  # Host paths, the directories if `up` created them.
  if grep -qx "created /var/lib/kubelet/device-plugins" "$dir/host-state" 2>/dev/null; then
    rm -f /var/lib/kubelet/device-plugins/kubelet.sock /var/lib/kubelet/device-plugins/kubelet_internal_checkpoint
  fi
  while read -r path; do
    [ -z "$path" ] || rmdir "$path" 2>/dev/null || true
  done < <(host_state created)

  while read -r name value; do
    [ -z "$name" ] || sysctl -qw "$name=$value" >/dev/null || true
  done < <(host_state sysctl)
}

# leftovers: what teardown should have removed and did not, one item a line.
leftovers() {
  local pid name
  for name in "${components[@]}"; do
    ! running "$name" || echo "process $name ($(<"$dir/pids/$name.pid"))"
  done
  for pid in $(shims); do echo "shim process $pid"; done
  awk -v d="$dir/" 'index($5, d) == 1 {print "mount " $5}' /proc/self/mountinfo
  if [ -d /var/log/containers ]; then
    find /var/log/containers -maxdepth 1 -type l -lname "$dir/*" -printf 'file %p\n'
  fi
  host_ours || return 0
  for pid in $(pod_pids); do echo "pod process $pid"; done
  [ "$(link_alias "$node_link")" != "$dir" ] || echo "link $node_link"
  if recorded link; then
    ! ip link show "$cni_bridge" >/dev/null 2>&1 || echo "link $cni_bridge"
  fi
  if recorded iptables; then
    for name in iptables ip6tables; do
      command -v "$name" >/dev/null || continue
      for pid in filter nat mangle raw; do
        $name -w -t "$pid" -S 2>/dev/null | grep -E -- '-j (KUBE|CNI)-|^-N (KUBE|CNI)-|kinto-local-cluster' |
          sed "s/^/$name -t $pid: /" || true
      done
    done
  fi
  if recorded iptables && command -v nft >/dev/null; then
    ! nft list table inet kube-network-policies >/dev/null 2>&1 || echo "nftables table inet kube-network-policies"
  fi
  while read -r name; do
    # shellcheck disable=SC2086 # a route is several words
    [ -z "$name" ] || [ -z "$(ip route show $name 2>/dev/null)" ] || echo "route $name"
  done < <(host_state route)
  if recorded cgroups; then
    for name in /sys/fs/cgroup/*/kubepods; do
      [ ! -d "$name" ] || echo "cgroup $name"
    done
  fi
  # Only this script names a network so; with the host ours, no other cluster is using it.
  if [ -d /var/lib/cni/results ]; then
    find /var/lib/cni/results -maxdepth 1 -name "$cni_network-*" -printf 'file %p\n'
  fi
}


down() {
  local left
  if [ ! -d "$dir" ]; then
    echo "local-cluster: nothing in $dir, already down"
    return 0
  fi
  dir=$(cd "$dir" && pwd -P)
  [ -e "$dir/$marker" ] || die "$dir was not made by $0: not touching it"
  teardown
  left=$(leftovers)
  [ -z "$left" ] || die "$(printf 'teardown left these behind (kept %s; run down again):\n%s' "$dir" "$left")"
  rm -rf --one-file-system "$dir"
  echo "local-cluster: stopped, host restored, removed $dir"
}

status() {
  local name pids=() pid kb=0 rss down=0
  [ -d "$dir" ] || die "no cluster in $dir"
  dir=$(cd "$dir" && pwd -P)
  [ -e "$dir/$marker" ] || die "$dir was not made by $0"
  for name in "${components[@]}"; do
    if running "$name"; then
      pid=$(<"$dir/pids/$name.pid")
      pids+=("$pid")
      printf '%-24s running (pid %s)\n' "$name" "$pid"
    else
      printf '%-24s NOT running\n' "$name"
      down=1
    fi
  done
  mapfile -t -O "${#pids[@]}" pids < <(shims; pod_pids)
  for pid in "${pids[@]}"; do
    rss=$(ps -o rss= -p "$pid" 2>/dev/null) || continue
    kb=$((kb + rss))
  done
  printf '%-24s %d shims, %d processes in pods\n' containers "$(shims | wc -l)" "$(pod_pids | wc -l)"
  printf '%-24s %d MiB (resident, every process above)\n' memory $((kb / 1024))
  [ -f "$dir/kubeconfig" ] && echo "export KUBECONFIG=$dir/kubeconfig"
  return "$down"
}

# issue NAME SUBJECT EXTENSIONS: an EC key and a certificate for it signed by the CA (EC keys are
# generated instantly, unlike RSA ones). A random serial rather than a serial file: several
# run at once.
issue() {
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$pki/$1.key"
  openssl req -new -key "$pki/$1.key" -subj "$2" -out "$pki/$1.csr"
  openssl x509 -req -in "$pki/$1.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" \
    -set_serial "0x$(openssl rand -hex 16)" -days 30 -sha256 -extfile <(printf '%b\n' "$3") -out "$pki/$1.crt"
}

make_pki() {
  local client='basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth'
  local server='basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth'
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$pki/ca.key"
  openssl req -new -key "$pki/ca.key" -subj /CN=kinto-demo-ca -out "$pki/ca.csr"
  openssl x509 -req -in "$pki/ca.csr" -signkey "$pki/ca.key" -days 30 -sha256 -out "$pki/ca.crt" \
    -extfile <(printf 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,digitalSignature\n')
  # The certificates are made in parallel (a second less).
  local pids=() pid
  # The SANs cover how clients reach the API server: the node IP from this host, the ClusterIP
  # of the "kubernetes" Service (first IP of the service range) and its names from a pod.
  issue apiserver /CN=kube-apiserver "$server\nsubjectAltName=IP:$node_ip,IP:10.0.0.1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local" & pids+=($!)
  issue admin "/O=system:masters/CN=kinto-demo-admin" "$client" & pids+=($!)
  issue kube-controller-manager /CN=system:kube-controller-manager "$client" & pids+=($!)
  issue kube-scheduler /CN=system:kube-scheduler "$client" & pids+=($!)
  # The Node authorizer and NodeRestriction know a kubelet by this name and group.
  issue kubelet "/O=system:nodes/CN=system:node:$node_name" "$client" & pids+=($!)
  # kubelet's own HTTPS endpoint (logs, exec), which the API server verifies against the CA.
  issue kubelet-serving "/CN=$node_name" "$server\nsubjectAltName=IP:$node_ip,DNS:$node_name" & pids+=($!)
  # The API server's identity towards kubelets (kubectl logs/exec go through it).
  issue apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" "$client" & pids+=($!)
  # Bound to the built-in role system:node-proxier.
  issue kube-proxy /CN=system:kube-proxy "$client" & pids+=($!)
  # Signs and verifies service-account tokens.
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$pki/sa.key" &&
    openssl pkey -in "$pki/sa.key" -pubout -out "$pki/sa.pub" & pids+=($!)
  for pid in "${pids[@]}"; do
    wait "$pid" || die "making the certificates failed: $(tail -n 5 "$dir/logs/openssl.log")"
  done
}

# write_kubeconfig FILE USER: a kubeconfig that authenticates with the client certificate of USER.
write_kubeconfig() {
  cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: local
  cluster:
    server: https://$node_ip:$apiserver_port
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

write_node_configs() {
  mkdir -p "$dir/cni/net.d" "$dir/containerd/certs.d/_default"
  # Pod IPs from host-local in this node's /24 on our bridge, NAT to the outside (no pod address
  # ever leaves the machine as a source), hairpin so that a pod reaches itself through a Service,
  # portmap for hostPort. containerd adds the loopback interface itself.
  cat >"$dir/cni/net.d/10-$cni_network.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "$cni_network",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$cni_bridge",
      "isGateway": true,
      "ipMasq": true,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": "$node_pod_cidr"}]],
        "routes": [{"dst": "0.0.0.0/0"}],
        "dataDir": "$dir/cni/networks"
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF

  # Every registry is this unreachable loopback port: an image that was not imported fails at
  # once, with its name in the error, instead of being looked up and fetched off this machine.
  # (containerd 1.6 ignores a hosts.toml without a [host] table.)
  cat >"$dir/containerd/certs.d/_default/hosts.toml" <<'EOF'
server = "https://127.0.0.1:1"
[host."https://127.0.0.1:1"]
  capabilities = ["pull", "resolve"]
EOF

  # restrict_oom_score_adj: root here lacks CAP_SYS_RESOURCE, so runc cannot lower a process's
  # OOM score; without it every sandbox fails with "can't get final child's PID from pipe".
  # SystemdCgroup = false: cgroup v1 and no systemd. netns_mounts_under_state_dir keeps the pods'
  # network namespaces out of /run/netns. enable_unprivileged_ports: CoreDNS binds port 53 as
  # its non-root user (containerd 2.x's default).
  cat >"$dir/containerd.toml" <<EOF
version = 2
root = "$dir/containerd/root"
state = "$dir/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]

[grpc]
  address = "$dir/containerd.sock"
[ttrpc]
  address = "$dir/containerd-ttrpc.sock"
[debug]
  address = ""
[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "$dir/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$pause_ref"
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  netns_mounts_under_state_dir = true
  enable_unprivileged_ports = true
  enable_unprivileged_icmp = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "$snapshotter"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "$dir/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$dir/cni/net.d"
    max_conf_num = 1
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "$dir/containerd/certs.d"
EOF

  # cgroupfs, cgroup v1 accepted: no systemd, cgroup v1 on this machine. No healthz or read-only
  # port; the authenticated port on the node IP only. resolvConf "": pods with dnsPolicy Default
  # (CoreDNS) get no name server, rather than the host's, which is off this machine. Eviction
  # only when really full, and no image garbage collection: images cannot be pulled again here.
  cat >"$dir/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
containerRuntimeEndpoint: unix://$dir/containerd.sock
address: $node_ip
port: 10250
healthzPort: 0
readOnlyPort: 0
tlsCertFile: $pki/kubelet-serving.crt
tlsPrivateKeyFile: $pki/kubelet-serving.key
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: true
  x509:
    clientCAFile: $pki/ca.crt
authorization:
  mode: Webhook
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
clusterDNS: [$dns_ip]
clusterDomain: cluster.local
resolvConf: ""
podLogsDir: $dir/pod-logs
volumePluginDir: $dir/kubelet-plugins
evictionHard:
  memory.available: 100Mi
  nodefs.available: "1%"
  nodefs.inodesFree: "1%"
  imagefs.available: "1%"
  imagefs.inodesFree: "1%"
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
EOF

  # conntrack: 0 leaves the kernel's values alone (no sysctl to write). localhostNodePorts off:
  # it would set route_localnet. NodePorts on the node IP only, not on eth0. Health and metrics
  # on loopback (the defaults are 0.0.0.0:10256 and fixed ports).
  cat >"$dir/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection:
  kubeconfig: $dir/kube-proxy.kubeconfig
hostnameOverride: $node_name
mode: iptables
clusterCIDR: $pod_cidr
nodePortAddresses: [primary]
healthzBindAddress: 127.0.0.1:$proxy_healthz_port
metricsBindAddress: 127.0.0.1:$proxy_metrics_port
iptables:
  localhostNodePorts: false
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
EOF
}

# start NAME ARGS...: runs a component in the background, in its own session so that a Ctrl-C
# in the terminal reaches the script that will call `down`, not the components.
start() {
  local name=$1 bin
  shift
  case $name in
  containerd) bin=containerd ;;
  *) bin=$assets/$name ;;
  esac
  # 3>&-: not the stderr `up` keeps on fd 3, or a pipe reading up's output would wait for them.
  setsid "$bin" "$@" </dev/null >"$dir/logs/$name.log" 2>&1 3>&- &
  echo $! >"$dir/pids/$name.pid"
}

kubectl() {
  "$assets/kubectl" --kubeconfig "$dir/kubeconfig" --cache-dir "$dir/kubectl-cache" --request-timeout=5s "$@"
}

ctr_() {
  ctr --address "$dir/containerd.sock" -n k8s.io "$@"
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

# abort_up, on any failure or interruption of `up`: stops what was started, undoes the host
# changes, keeps the logs.
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

# check_alive: fails `up` with the log of a component that exited.
check_alive() {
  local name status
  for name in "${components[@]}"; do
    [ -e "$dir/pids/$name.pid" ] || continue
    running "$name" && continue
    # The components are children of this script: wait gives how they ended.
    status=0
    wait "$(<"$dir/pids/$name.pid")" || status=$?
    if ((status > 128)); then
      fail "$name" "$name was killed by SIG$(kill -l $((status - 128))) during start-up"
    fi
    fail "$name" "$name exited with status $status during start-up"
  done
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
  first_refs=("$pause_ref")
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
  local file ref names first i pids=() files=()
  while read -r file ref; do
    [ -n "$file" ] || continue
    first=no
    ! printf '%s\n' "${first_refs[@]}" | grep -qxF "$ref" || first=yes
    case $1-$first in first-no | rest-yes) continue ;; esac
    [ -s "$images_dir/$file" ] || die "missing $images_dir/$file (for $ref): build it with hack/build-images.sh"
    if ((${#pids[@]} == 2)); then
      wait "${pids[0]}" || die "importing $images_dir/${files[0]} failed: $(tail -n 5 "$dir/logs/import.log")"
      pids=("${pids[1]}") files=("${files[1]}")
    fi
    ctr_ images import --snapshotter "$snapshotter" "$images_dir/$file" >>"$dir/logs/import.log" 2>&1 &
    pids+=($!) files+=("$file")
  done <"$images_dir/images.txt"
  for i in "${!pids[@]}"; do
    wait "${pids[i]}" || die "importing $images_dir/${files[i]} failed: $(tail -n 5 "$dir/logs/import.log")"
  done
  [ "$1" != first ] || return 0
  names=$(ctr_ images ls -q)
  while read -r file ref; do
    [ -z "$ref" ] || grep -qxF "$ref" <<<"$names" ||
      die "$images_dir/$file did not give the image $ref (it holds: $(tr '\n' ' ' <<<"$names"))"
  done <"$images_dir/images.txt"
}

# wait_import first|all: until the background import has done that part.
wait_import() {
  local status=0
  if [ "$1" = all ]; then
    wait "$import_pid" || status=$?
  else
    until [ -e "$dir/logs/import-first.done" ]; do
      kill -0 "$import_pid" 2>/dev/null || break
      sleep 0.1
    done
    [ -e "$dir/logs/import-first.done" ] || wait "$import_pid" || status=$?
  fi
  ((status == 0)) || fail import "importing the images of $images_dir/images.txt failed"
}

apply_addons() {
  [ -n "$addons" ] || return 0
  kubectl apply -f "$dir/addons" >"$dir/logs/addons.log" 2>&1 ||
    die "applying the addons failed: $(tail -n 5 "$dir/logs/addons.log")"
}

# dns_answer NAME: the first IPv4 address CoreDNS (through the kube-dns Service) gives for NAME,
# asked from this host: a Service IP through kube-proxy's rules, answered by a pod.
dns_answer() {
  python3 - "$1" "$dns_ip" <<'EOF' 2>/dev/null
import socket, struct, sys
name, server = sys.argv[1], sys.argv[2]
q = struct.pack(">HHHHHH", 0x4b1d, 0x0100, 1, 0, 0, 0)
q += b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0" + struct.pack(">HH", 1, 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(1)
s.sendto(q, (server, 53))
r = s.recv(4096)
if r[3] & 0x0F == 0 and struct.unpack(">H", r[6:8])[0] > 0 and r[-6:-4] == b"\x00\x04":
    print(socket.inet_ntoa(r[-4:]))
EOF
}

# elapsed: seconds since `up` started, with one decimal.
elapsed() {
  local t=$((${EPOCHREALTIME//[!0-9]/} - start_time))
  printf '%d.%01d' $((t / 1000000)) $((t / 100000 % 10))
}

# wait_until STAGE: until the API server answers (api), and the node is Ready (node) or the
# controllers run (controllers); fails `up` with the log of the component it was waiting for.
wait_until() {
  local deadline=$((SECONDS + ready_timeout)) waiting
  while :; do
    check_alive
    if ! kubectl get --raw /readyz >/dev/null 2>&1; then
      waiting=kube-apiserver
    elif [ "$1" = controllers ] && ! kubectl -n default get serviceaccount default >/dev/null 2>&1; then
      # The service-account controller of kube-controller-manager creates it: its existence
      # shows that the controllers run.
      waiting=kube-controller-manager
    elif [ "$1" = node ] &&
      [ "$(kubectl get node "$node_name" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" != True ]; then
      waiting=kubelet
    else
      return 0
    fi
    ((SECONDS < deadline)) || fail "$waiting" "not ready after $ready_timeout s, waiting for $waiting"
    sleep 0.25
  done
}

wait_dns() {
  local deadline=$((SECONDS + addons_timeout))
  until [ "$(dns_answer kubernetes.default.svc.cluster.local)" = 10.0.0.1 ]; do
    check_alive
    if ((SECONDS >= deadline)); then
      {
        echo "local-cluster: CoreDNS does not answer at $dns_ip after $addons_timeout s"
        echo "--- pods of kube-system:"
        kubectl -n kube-system get pods -o wide 2>&1 || true
        echo "--- recent events:"
        kubectl get events -A --sort-by=.lastTimestamp 2>&1 | tail -n 15 || true
        echo "--- last lines of $dir/logs/kubelet.log:"
        tail -n 15 "$dir/logs/kubelet.log"
      } >&2
      exit 1
    fi
    sleep 0.5
  done
}

# network_policies: the NetworkPolicy enforcer of hack/local-cluster/network-policies.yaml,
# applied once every image is in (its image is not among the addons' first ones), and waited for
# until it has bound netfilter queue 98 (the manifest's --nfqueue-id), which it does once its
# caches are synced and its nftables rules written: from then on policies hold.
network_policies() {
  local deadline=$((SECONDS + addons_timeout))
  kubectl apply -f "$root/hack/local-cluster/network-policies.yaml" >>"$dir/logs/addons.log" 2>&1 ||
    die "applying network-policies.yaml failed: $(tail -n 5 "$dir/logs/addons.log")"
  until awk '$1 == 98 {found = 1} END {exit !found}' /proc/net/netfilter/nfnetlink_queue 2>/dev/null; do
    check_alive
    if ((SECONDS >= deadline)); then
      {
        echo "local-cluster: the NetworkPolicy enforcer did not bind netfilter queue 98 in $addons_timeout s"
        echo "--- its pod and the end of its log:"
        kubectl -n kube-system get pods -l k8s-app=kube-network-policies -o wide 2>&1 || true
        kubectl -n kube-system logs ds/kube-network-policies --tail 15 2>&1 || true
      } >&2
      exit 1
    fi
    sleep 0.25
  done
}

# host_checks: what `up` needs on the host, and what another cluster (or a failed teardown)
# would be holding.
host_checks() {
  local b owner
  for b in etcd kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl; do
    [ -x "$assets/$b" ] || die "missing $assets/$b: build it with 'make kube-binaries'"
  done
  for b in openssl python3 setsid containerd containerd-shim-runc-v2 runc ctr ip iptables nft sysctl; do
    command -v "$b" >/dev/null || die "$b is required (hack/install-host-packages.sh installs it)"
  done
  ! nft list table inet kube-network-policies >/dev/null 2>&1 ||
    die "nftables table inet kube-network-policies exists: a NetworkPolicy enforcer runs, or a teardown did not finish"
  for b in bridge host-local portmap loopback; do
    [ -x "/usr/lib/cni/$b" ] || die "missing /usr/lib/cni/$b: apt-get install containernetworking-plugins"
  done
  [ -f "$images_dir/images.txt" ] || die "no $images_dir/images.txt: build the images with hack/build-images.sh"
  [[ -d /sys/fs/cgroup/pids && -d /sys/fs/cgroup/memory ]] ||
    die "expected cgroup v1 hierarchies under /sys/fs/cgroup (this script configures cgroup v1)"
  if ip link show "$node_link" >/dev/null 2>&1; then
    owner=$(link_alias "$node_link")
    die "a local cluster already runs on this machine (link $node_link, of ${owner:-an unknown cluster}): stop it with '$0 down ${owner:-DIR}'"
  fi
  ! ip link show "$cni_bridge" >/dev/null 2>&1 || die "link $cni_bridge exists: a local cluster's teardown did not finish ('$0 down' its DIR)"
  for b in "$pod_cidr" "$service_cidr" "$node_ip/32"; do
    [ -z "$(ip route show "$b")" ] || die "the host already routes $b: this cluster's ranges would clash"
  done
  ! ls -d /sys/fs/cgroup/*/kubepods >/dev/null 2>&1 ||
    die "kubepods cgroups exist: another kubelet runs here, or a teardown did not finish"
  for b in iptables ip6tables; do
    command -v "$b" >/dev/null || continue
    ! { $b -w -t nat -S; $b -w -t filter -S; } 2>/dev/null | grep -qE '^-N (KUBE|CNI)-' ||
      die "$b has KUBE-*/CNI-* chains: another Kubernetes or CNI network is set up here, or a teardown did not finish"
  done
}

# host_setup: the node's network and kernel settings, each recorded in DIR/host-state first so
# that teardown undoes exactly that.
host_setup() {
  local name path
  # Left loaded by `down`, like any module the kernel loads on demand.
  if [ ! -e /proc/sys/net/bridge/bridge-nf-call-iptables ]; then
    modprobe br_netfilter 2>/dev/null ||
      die "net.bridge.bridge-nf-call-iptables is missing and modprobe br_netfilter failed"
  fi
  for name in "${host_sysctls[@]}"; do
    echo "sysctl $name $(sysctl -n "$name")" >>"$dir/host-state"
  done
  for path in "${host_dirs[@]}"; do
    [ -e "$path" ] || echo "created $path" >>"$dir/host-state"
  done
  printf '%s\n' "link $node_link" iptables cgroups >>"$dir/host-state"

  # A bridge with no port stands in for a dummy link (not in this kernel): its address is local,
  # and what is routed to it goes nowhere. The alias tells whose it is.
  ip link add "$node_link" type bridge
  ip link set "$node_link" alias "$dir"
  ip addr add "$node_ip/32" dev "$node_link"
  ip link set "$node_link" up
  # Pod addresses outside this node's /24 (on the CNI bridge, more specific) are unreachable.
  echo "route unreachable $pod_cidr" >>"$dir/host-state"
  ip route add unreachable "$pod_cidr"
  # The service range cannot be "unreachable" too: a connection from this host fails at its
  # route lookup, before kube-proxy's DNAT (OUTPUT chain) rewrites the address. Routed to
  # kinto-lc0 instead, and rejected there unless DNAT gave it a pod or the API server.
  echo "route $service_cidr dev $node_link" >>"$dir/host-state"
  ip route add "$service_cidr" dev "$node_link" src "$node_ip"
  for name in OUTPUT FORWARD; do
    iptables -w -A "$name" -o "$node_link" -d "$service_cidr" -m comment --comment kinto-local-cluster \
      -j REJECT --reject-with icmp-host-unreachable
  done
  # Pods talk to this machine only: what they send to be forwarded anywhere but another pod (off
  # the machine, through the default route) is refused here rather than masqueraded out. First
  # in FORWARD, ahead of the CNI's and kube-proxy's accepting rules.
  iptables -w -I FORWARD 1 -s "$pod_cidr" ! -o "$cni_bridge" -m comment --comment kinto-local-cluster \
    -j REJECT --reject-with icmp-net-unreachable

  # Routing for the pods, and iptables on bridged traffic (a pod reaching a Service backed by a
  # pod on the same bridge).
  sysctl -qw net.ipv4.ip_forward=1 net.bridge.bridge-nf-call-iptables=1
}

up() {
  local b ports
  start_time=${EPOCHREALTIME//[!0-9]/}
  [[ $dir != *[[:space:]]* ]] || die "DIR must not contain white space"
  [ "$(id -u)" = 0 ] || die "must run as root: it runs containers and sets up the node's network"

  if [ -d "$dir" ] && [ -n "$(ls -A "$dir")" ]; then
    dir=$(cd "$dir" && pwd -P)
    [ -e "$dir/$marker" ] || die "$dir exists and was not made by $0: choose another directory"
    for b in "${components[@]}"; do
      ! running "$b" || die "a cluster is already running in $dir: stop it with '$0 down $dir'"
    done
    # Left over by an `up` that failed, or by processes that were killed: start afresh.
    teardown
    [ -z "$(leftovers)" ] || die "$(printf 'the teardown of what %s left failed:\n%s' "$dir" "$(leftovers)")"
    rm -rf --one-file-system "$dir"
  fi
  host_checks
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd -P)
  # Unix sockets (kubelet's plugin registry is the deepest) must fit in 108 bytes.
  ((${#dir} <= 60)) || die "DIR $dir is too long (${#dir} characters, 60 at most: kubelet's sockets live under it)"
  touch "$dir/$marker"
  pki=$dir/pki
  mkdir -p "$pki" "$dir/logs" "$dir/pids" "$dir/flexvolume" "$dir/local-path"
  exec 3>&2
  trap abort_up EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM

  if [ -n "${LOCAL_CLUSTER_SNAPSHOTTER:-}" ]; then
    snapshotter=$LOCAL_CLUSTER_SNAPSHOTTER
  elif grep -qw overlay /proc/filesystems; then
    snapshotter=overlayfs
  else
    snapshotter=native
  fi
  case ${LOCAL_CLUSTER_TMPFS:-auto} in
  auto) (($(awk '$1 == "MemAvailable:" {print $2}' /proc/meminfo) >= 8 * 1024 * 1024)) && tmpfs=1 || tmpfs=0 ;;
  0 | 1) tmpfs=$LOCAL_CLUSTER_TMPFS ;;
  *) die "LOCAL_CLUSTER_TMPFS must be 0 or 1" ;;
  esac
  pause_ref=$(image_ref '/pause:')
  render_addons

  host_setup
  if [ "$tmpfs" = 1 ]; then
    mkdir -p "$dir/containerd"
    mount -t tmpfs -o mode=0711 local-cluster "$dir/containerd"
  fi

  # Ask the kernel for free ports (the API server's on the node IP, the others on 127.0.0.1),
  # all held open together so that they differ.
  read -ra ports < <(python3 - "$node_ip" <<'EOF'
import socket, sys
socks = [socket.socket() for _ in range(5)]
for i, s in enumerate(socks):
    s.bind((sys.argv[1] if i == 2 else "127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))
EOF
  )
  [ ${#ports[@]} -eq 5 ] || die "could not pick free ports"
  etcd_port=${ports[0]} etcd_peer_port=${ports[1]} apiserver_port=${ports[2]}
  proxy_healthz_port=${ports[3]} proxy_metrics_port=${ports[4]}
  cat >"$dir/ports.env" <<EOF
ETCD_CLIENT_PORT=$etcd_port
ETCD_PEER_PORT=$etcd_peer_port
APISERVER_PORT=$apiserver_port
APISERVER_URL=https://$node_ip:$apiserver_port
NODE_NAME=$node_name
NODE_IP=$node_ip
EOF

  make_pki 2>"$dir/logs/openssl.log"
  write_kubeconfig "$dir/kubeconfig" admin
  write_kubeconfig "$dir/kube-controller-manager.kubeconfig" kube-controller-manager
  write_kubeconfig "$dir/kube-scheduler.kubeconfig" kube-scheduler
  write_kubeconfig "$dir/kubelet.kubeconfig" kubelet
  write_kubeconfig "$dir/kube-proxy.kubeconfig" kube-proxy
  write_node_configs

  # --unsafe-no-fsync: this data is thrown away, and fsync dominates etcd's latency on slow disks.
  # etcd creates its --data-dir itself, with the 0700 mode it insists on.
  start etcd --name default --data-dir "$dir/etcd" --unsafe-no-fsync \
    --listen-client-urls "http://127.0.0.1:$etcd_port" \
    --advertise-client-urls "http://127.0.0.1:$etcd_port" \
    --listen-peer-urls "http://127.0.0.1:$etcd_peer_port" \
    --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer_port" \
    --initial-cluster "default=http://127.0.0.1:$etcd_peer_port"
  # On the node IP only: reachable from this host and from pods (the "kubernetes" Service's
  # endpoint is the advertise address, which may not be a loopback one), not on eth0's address;
  # a single --bind-address, so the kubeconfigs name the node IP rather than 127.0.0.1.
  # Kubelets are reached at their InternalIP (the host name resolves to 127.0.0.1 here) and
  # their serving certificate is checked.
  start kube-apiserver \
    --etcd-servers "http://127.0.0.1:$etcd_port" \
    --bind-address "$node_ip" --secure-port "$apiserver_port" --advertise-address "$node_ip" \
    --service-cluster-ip-range "$service_cidr" \
    --authorization-mode Node,RBAC \
    --enable-admission-plugins NodeRestriction \
    --client-ca-file "$pki/ca.crt" \
    --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
    --kubelet-client-certificate "$pki/apiserver-kubelet-client.crt" \
    --kubelet-client-key "$pki/apiserver-kubelet-client.key" \
    --kubelet-certificate-authority "$pki/ca.crt" \
    --kubelet-preferred-address-types InternalIP,Hostname \
    --service-account-issuer https://kubernetes.default.svc \
    --service-account-key-file "$pki/sa.pub" \
    --service-account-signing-key-file "$pki/sa.key" \
    --allow-privileged=false
  start containerd --config "$dir/containerd.toml"

  # kubelet wants its runtime answering when it starts. It initializes while the images go in
  # and etcd and the API server start (about 5 s), and registers the node as soon as it can (the
  # Node authorizer, not RBAC, lets it). No pod can start before the addons are applied.
  until ctr_ version >/dev/null 2>&1; do
    check_alive
    ((SECONDS < ready_timeout)) || fail containerd "containerd did not answer on $dir/containerd.sock"
    sleep 0.1
  done
  start kubelet --config "$dir/kubelet.yaml" --kubeconfig "$dir/kubelet.kubeconfig" \
    --root-dir "$dir/kubelet" --cert-dir "$pki/kubelet" \
    --hostname-override "$node_name" --node-ip "$node_ip"
  # In the background; those the addons run first.
  (import_images first && touch "$dir/logs/import-first.done" && import_images rest) 2>>"$dir/logs/import.log" &
  import_pid=$!

  # The other components wait for a ready API server: started earlier, their first requests are
  # refused (RBAC's roles are not there yet) and their retries back off for seconds.
  wait_until api
  # --secure-port=0 (here and for the scheduler): no metrics endpoint, which would otherwise bind
  # a fixed port on every address; --flex-volume-plugin-dir keeps it from writing under /usr/libexec.
  # The node's podCIDR (the first /24 of the pod range) matches the CNI configuration's.
  start kube-controller-manager \
    --kubeconfig "$dir/kube-controller-manager.kubeconfig" \
    --secure-port=0 --leader-elect=false \
    --flex-volume-plugin-dir "$dir/flexvolume" \
    --use-service-account-credentials \
    --service-account-private-key-file "$pki/sa.key" \
    --root-ca-file "$pki/ca.crt" \
    --cluster-signing-cert-file "$pki/ca.crt" --cluster-signing-key-file "$pki/ca.key" \
    --allocate-node-cidrs --cluster-cidr "$pod_cidr" --node-cidr-mask-size 24 \
    --service-cluster-ip-range "$service_cidr" \
    --kube-api-qps 100 --kube-api-burst 200
  start kube-scheduler \
    --kubeconfig "$dir/kube-scheduler.kubeconfig" --secure-port=0 --leader-elect=false
  start kube-proxy --config "$dir/kube-proxy.yaml"
  wait_import first
  apply_addons

  wait_until node
  node_ready=$(elapsed)
  # A CoreDNS that answers shows every part at work: controllers, scheduler, kubelet, the pod
  # network, kube-proxy, and a pod reaching the API server through the "kubernetes" Service.
  case " $addons " in
  *" coredns "*) wait_dns ;;
  *) wait_until controllers ;;
  esac
  addons_ready=$(elapsed)
  wait_import all
  network_policies
  trap - EXIT INT TERM
  printf 'local-cluster: node %s Ready in %s s, %s in %s s, %d images imported (%s) in %s s\n' "$node_name" \
    "$node_ready" "$([[ " $addons " == *" coredns "* ]] && echo "CoreDNS answering" || echo "controllers running")" \
    "$addons_ready" "$(grep -c . "$images_dir/images.txt")" "$([ "$tmpfs" = 1 ] && echo "in memory" || echo "on disk")" "$(elapsed)"
  echo "local-cluster: API server https://$node_ip:$apiserver_port; export KUBECONFIG=$dir/kubeconfig"
}

images() {
  [ -d "$dir" ] || die "no cluster in $dir"
  dir=$(cd "$dir" && pwd -P)
  running containerd || die "containerd of $dir is not running: start the cluster with '$0 up $dir'"
  snapshotter=$(awk -F'"' '$1 ~ /^ *snapshotter = / {print $2; exit}' "$dir/containerd.toml")
  [ -f "$images_dir/images.txt" ] || die "no $images_dir/images.txt: build the images with hack/build-images.sh"
  first_refs=()
  import_images all
  echo "local-cluster: imported the $(grep -c . "$images_dir/images.txt") images of $images_dir/images.txt"
}

case $action in
up) up ;;
down) down ;;
status) status ;;
images) images ;;
*) usage ;;
esac
