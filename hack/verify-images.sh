#!/usr/bin/env bash
# Checks the images hack/build-images.sh made by running them for real: a throwaway containerd
# (its own config, root, state and socket under a temporary folder, stopped by its PID at the
# end) imports every archive of OUTDIR/images.txt into the k8s.io namespace, as the local
# cluster's containerd does, and `ctr run`s each image with the user and the read-only root the
# operator's pods use, doing what the cluster relies on: PostgreSQL initdb, server and
# pg_isready as uid 999; Kinto serving its API as uid 10001; CoreDNS binding port 53 as a
# non-root user; the provisioner's helper commands in the Debian image.
#
# Usage: hack/verify-images.sh [OUTDIR]        (default bin/images)
# Env:   SNAPSHOTTER (default overlayfs; native also works here), VERBOSE=1 prints every output
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/bin/images}
snapshotter=${SNAPSHOTTER:-overlayfs}

die() {
  echo "verify-images: $*" >&2
  exit 1
}

[ "$(id -u)" = 0 ] || die "must run as root (it runs containerd)"
[ -f "$out/images.txt" ] || die "no $out/images.txt: run hack/build-images.sh first"
for cmd in containerd ctr runc; do
  command -v "$cmd" >/dev/null || die "$cmd is missing: apt-get install containerd runc"
done

dir=$(mktemp -d /tmp/verify-images.XXXXXX)
# containerd 1.6 puts its shims' sockets in /run/containerd/s whatever its config says; that
# folder is removed again if this run made it and left it empty.
made_run_dir=""
[ -d /run/containerd ] || made_run_dir=yes
pid=""
cleanup() {
  if [ -n "$pid" ]; then
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  local m
  awk -v d="$dir/" 'index($2, d) == 1 {print $2}' /proc/mounts | sort -r | while read -r m; do
    umount -l "$m" || true
  done
  rm -rf --one-file-system "$dir"
  if [ -n "$made_run_dir" ]; then
    rmdir /run/containerd/s /run/containerd 2>/dev/null || true
  fi
}
trap cleanup EXIT

# The CRI plugin is off: ctr needs none of it, and it would look for CNI and a sandbox image.
cat >"$dir/config.toml" <<EOF
version = 2
root = "$dir/root"
state = "$dir/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$dir/containerd.sock"
[ttrpc]
  address = "$dir/containerd-ttrpc.sock"
EOF
containerd --config "$dir/config.toml" >"$dir/containerd.log" 2>&1 &
pid=$!
ctr=(ctr --address "$dir/containerd.sock" --namespace k8s.io)
for _ in $(seq 50); do
  "${ctr[@]}" version >/dev/null 2>&1 && break
  kill -0 "$pid" 2>/dev/null || die "containerd exited: $(tail -n 5 "$dir/containerd.log")"
  sleep 0.2
done
"${ctr[@]}" version >/dev/null || die "containerd did not answer on $dir/containerd.sock"

failures=0
n=0
ok() { echo "verify-images: ok   $*"; }
bad() {
  echo "verify-images: FAIL $*" >&2
  failures=$((failures + 1))
}

# run REF [ctr run flags] -- COMMAND...: runs COMMAND in a new container of REF, with a
# read-only root and a fresh /tmp as the operator's pods have; prints its output and, when it
# fails, its exit status.
run() {
  local ref=$1 flags=()
  shift
  while [ "$1" != -- ]; do
    flags+=("$1")
    shift
  done
  shift
  n=$((n + 1))
  timeout 120 "${ctr[@]}" run --rm --snapshotter "$snapshotter" --fifo-dir "$dir/fifo" \
    --runc-root "$dir/runc" --read-only --mount type=tmpfs,src=tmpfs,dst=/tmp,options=mode=1777 \
    "${flags[@]}" "$ref" "verify-$n" "$@" 2>&1 </dev/null || echo "(exit status $?)"
}

indent() { sed 's/^/    /'; }

# expect WHAT OUTPUT PATTERN: reports whether OUTPUT matches the extended regexp PATTERN.
expect() {
  [ -z "${VERBOSE:-}" ] || indent <<<"$2"
  if grep -Eq "$3" <<<"$2"; then
    ok "$1"
  else
    bad "$1: output does not match /$3/:"
    indent <<<"$2" | tail -n 20 >&2
  fi
}

# The checks run by the containers' sh (expanded there, not here).
# shellcheck disable=SC2016
pg_script='set -eu
export PGDATA=/var/lib/postgresql/data/pgdata
echo "uid $(id -u) $(id -un) gid $(id -g)"
initdb --pgdata="$PGDATA" --username=postgres --encoding=UTF8 --no-locale --auth-local=peer --auth-host=scram-sha-256 >/dev/null
printf "CREATE ROLE kinto LOGIN;\n\n" | postgres --single -D "$PGDATA" -j postgres >/dev/null
postgres --version
postgres -D "$PGDATA" -c listen_addresses=127.0.0.1 -c max_connections=200 >/tmp/pg.log 2>&1 &
for i in $(seq 60); do pg_isready --host=127.0.0.1 --port=5432 --username=kinto --dbname=postgres && break; sleep 0.5; done
psql -h /var/run/postgresql -U postgres -Atc "select 6 * 7"
kill -INT $!
wait $! || true'

# shellcheck disable=SC2016
kinto_script='set -eu
echo "uid $(id -u) $(id -un) gid $(id -g) in $(pwd)"
kinto version
kinto --help >/dev/null && echo "kinto --help ok"
python -c "import kinto, psycopg2, sqlalchemy, zope.sqlalchemy, prometheus_client; print(\"modules ok\", psycopg2.__version__)"
kinto start --ini "$KINTO_INI" >/tmp/kinto.log 2>&1 &
python - <<PY
import json, time, urllib.request
for _ in range(60):
    try:
        body = json.load(urllib.request.urlopen("http://127.0.0.1:8888/v1/"))
        print("kinto answers, project_version", body["project_version"])
        break
    except OSError:
        time.sleep(0.5)
else:
    print(open("/tmp/kinto.log").read())
PY
kill $!'

while read -r file ref; do
  [ -n "$file" ] || continue
  if ! "${ctr[@]}" images import "$out/$file" >/dev/null; then
    bad "$file: ctr images import failed"
    continue
  fi
  if [ "$("${ctr[@]}" images ls -q "name==$ref")" = "$ref" ]; then
    ok "$file imported as $ref"
  else
    bad "$file: no image named $ref after import: $("${ctr[@]}" images ls -q | tr '\n' ' ')"
    continue
  fi
  case $ref in
    */pause:*)
      expect "pause runs" "$(run "$ref" -- /pause -v)" '^pause\.c v' ;;
    */kinto-operator:*)
      expect "operator runs as 65532" "$(run "$ref" -- /manager --help)" 'ingress-namespace-selector' ;;
    */coredns:*)
      expect "coredns -version" "$(run "$ref" -- /coredns -version)" '^CoreDNS-'
      # Port 53 as uid 65532 with no-new-privileges, as in a pod: only the file capability allows
      # it. Started detached; it must still be running a few seconds later.
      printf '.:53 {\n    errors\n    health :8080\n    ready :8181\n}\n' >"$dir/Corefile"
      n=$((n + 1))
      "${ctr[@]}" run -d --snapshotter "$snapshotter" --runc-root "$dir/runc" --read-only \
        --log-uri "file://$dir/coredns.log" \
        --mount "type=bind,src=$dir/Corefile,dst=/etc/coredns/Corefile,options=rbind:ro" \
        "$ref" "verify-$n" /coredns -conf /etc/coredns/Corefile </dev/null >/dev/null
      sleep 3
      if "${ctr[@]}" tasks ls | grep -Eq "^verify-$n +[0-9]+ +RUNNING"; then
        ok "coredns serves on :53 as a non-root user"
      else
        bad "coredns did not stay up on :53: $(tail -n 5 "$dir/coredns.log")"
      fi
      "${ctr[@]}" tasks kill -s SIGKILL "verify-$n" >/dev/null 2>&1 || true
      for _ in $(seq 25); do
        "${ctr[@]}" tasks ls | grep -q "^verify-$n .*RUNNING" || break
        sleep 0.2
      done
      "${ctr[@]}" tasks rm "verify-$n" >/dev/null 2>&1 || true
      "${ctr[@]}" containers rm "verify-$n" >/dev/null
      ;;
    */local-path-provisioner:*)
      expect "local-path-provisioner from PATH" "$(run "$ref" -- local-path-provisioner --help)" 'local-path-provisioner' ;;
    */kube-network-policies:*)
      # Enforcing needs a cluster and the node's network: here, only that the binary runs.
      expect "kube-network-policies runs" "$(run "$ref" -- /bin/netpol --help)" 'nfqueue-id' ;;
    */debian:*)
      expect "debian: the provisioner's helper commands" \
        "$(run "$ref" -- sh -c 'mkdir -m 0777 -p /tmp/x/y && chmod 700 /tmp/x && rm -rf /tmp/x && echo ok')" '^ok$' ;;
    */postgres:*)
      # The image names no user (as the official one); the pods run it as 999, which ctr 1.6
      # cannot ask for (no --user): setpriv drops to 999 before anything else runs.
      output=$(run "$ref" --mount type=tmpfs,src=tmpfs,dst=/var/run/postgresql,options=mode=1777 \
        --mount type=tmpfs,src=tmpfs,dst=/var/lib/postgresql/data,options=mode=1777 -- \
        setpriv --reuid=999 --regid=999 --clear-groups sh -c "$pg_script")
      expect "postgres runs as 999" "$output" '^uid 999 postgres gid 999$'
      expect "postgres --version" "$output" '^postgres \(PostgreSQL\) '
      expect "initdb, then postgres answers pg_isready and psql" "$output" '^42$'
      ;;
    */kinto-server:26.90.0 | */kinto-server:26.91.0)
      # The faulty releases of build-images.sh: their fault is what they are for.
      # shellcheck disable=SC2016
      output=$(run "$ref" -- sh -c 'echo "uid $(id -u) $(id -un) gid $(id -g) in $(pwd)"; kinto.real version')
      expect "faulty kinto runs as 10001 in /app" "$output" '^uid 10001 app gid 10001 in /app$'
      expect "faulty kinto wraps a real Kinto" "$output" '^[0-9]+\.[0-9]+\.[0-9]+$'
      ;;
    */kinto-server:*)
      output=$(run "$ref" -- sh -c "$kinto_script")
      expect "kinto runs as 10001 in /app" "$output" '^uid 10001 app gid 10001 in /app$'
      expect "kinto imports its PostgreSQL and monitoring modules" "$output" '^modules ok'
      expect "kinto ${ref##*:} serves its API" "$output" "kinto answers, project_version ${ref##*:}$"
      ;;
    *) echo "verify-images: $ref imported; no run check for it" ;;
  esac
done < <(cat "$out/images.txt")

echo "verify-images: snapshotter $snapshotter"
[ "$failures" = 0 ] || die "$failures check(s) failed"
echo "verify-images: every image checked"
