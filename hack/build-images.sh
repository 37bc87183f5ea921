#!/usr/bin/env bash
# Builds the container images the local cluster runs, without a container engine or an image
# registry (neither is reachable where this project must work): every image is built here from
# the Go module proxy, Debian's mirror or PyPI, packed by hack/imagepack into an archive that
# `ctr -n k8s.io images import FILE` accepts, under the exact name pods ask for, so that they
# run it with imagePullPolicy IfNotPresent.
#
#   pause.tar                   registry.k8s.io/pause (containerd's sandbox_image), from
#                               build/pause of the Kubernetes sources
#   kinto-operator.tar          the operator (bin/manager), as the Dockerfile's distroless image
#                               (OPERATOR_BIN, OPERATOR_FILE and OPERATOR_REF make another build
#                               of it, such as the e2e upgrade test's previous operator)
#   coredns.tar                 CoreDNS with the cluster-DNS plugins only (no forward)
#   local-path-provisioner.tar  rancher's dynamic volume provisioner
#   kube-network-policies.tar   sig-network's NetworkPolicy enforcer (as kind runs), its queue
#                               through xtables' NFQUEUE (see hack/kube-network-policies/)
#   debian.tar                  Debian minbase: local-path-provisioner's helper pods
#   postgres-<major>.tar        PostgreSQL from Debian's packages, laid out as the official image:
#                               15 from bookworm, 17 from trixie (bookworm has no 17)
#   kinto-server-<version>.tar  Kinto from PyPI on Debian's Python, as the official image
#   kinto-server-26.9x.0.tar    Kinto whose migration fails (26.90.0) or whose server never
#                               serves (26.91.0), for the rollback e2e (IMAGES=kinto-faulty)
#
# OUTDIR/images.txt lists "file ref" per line (file relative to OUTDIR), for importing them all;
# hack/verify-images.sh runs each image in a throwaway containerd.
# Cached: an archive that names its ref is not rebuilt (the operator's: unless bin/manager is
# newer; `make build` makes it when missing); delete an archive to rebuild it. The Debian base
# file systems are kept in OUTDIR/rootfs/base (bookworm) and OUTDIR/rootfs/base-<suite> (trixie,
# for the PostgreSQL majors bookworm lacks). Needs root (files keep their owners, debootstrap
# and chroot), gcc with a static libc, debootstrap, Go.
#
# Usage: hack/build-images.sh [OUTDIR]          (default bin/images)
# Env:   IMAGES (default "pause operator coredns local-path-provisioner kube-network-policies
#        debian postgres kinto kinto-faulty"), PAUSE_REF, KUBE_VERSION, OPERATOR_BIN (default bin/manager),
#        OPERATOR_FILE (default kinto-operator.tar), OPERATOR_REF, COREDNS_VERSION,
#        LOCAL_PATH_VERSION, NETWORK_POLICIES_VERSION, DEBIAN_REF, DEBIAN_MIRROR,
#        POSTGRES_VERSIONS (default "15 17"), KINTO_VERSIONS (default "26.5.0 26.4.0")
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/bin/images}

# kubeadm v1.36 pins pause 3.10.2, the version of the build/pause sources in that release;
# kubelet v1.36 no longer names a sandbox image (containerd's sandbox_image does, 3.6 by default).
kube_version=${KUBE_VERSION:-v1.36.5}
pause_ref=${PAUSE_REF:-registry.k8s.io/pause:3.10.2}
operator_bin=${OPERATOR_BIN:-$root/bin/manager}
operator_file=${OPERATOR_FILE:-kinto-operator.tar}
operator_ref=${OPERATOR_REF:-docker.io/library/kinto-operator:dev}
coredns_version=${COREDNS_VERSION:-v1.15.0}
coredns_ref=docker.io/coredns/coredns:${coredns_version#v}
lpp_version=${LOCAL_PATH_VERSION:-v0.0.30}
lpp_ref=docker.io/rancher/local-path-provisioner:$lpp_version
knp_version=${NETWORK_POLICIES_VERSION:-v0.8.0}
knp_ref=registry.k8s.io/networking/kube-network-policies:$knp_version
debian_suite=bookworm
debian_ref=${DEBIAN_REF:-docker.io/library/debian:bookworm-slim}
debian_mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
postgres_versions=${POSTGRES_VERSIONS:-15 17}
kinto_versions=${KINTO_VERSIONS:-26.5.0 26.4.0}
# The faulty releases (IMAGES=kinto-faulty, for the rollback tests) are this release with a
# broken `kinto`, tagged 26.90.0 (its migration fails) and 26.91.0 (its
# server never serves).
faulty_kinto_base=${FAULTY_KINTO_BASE:-26.5.0}
images=${IMAGES:-pause operator coredns local-path-provisioner kube-network-policies debian postgres kinto kinto-faulty}

die() {
  echo "build-images: $*" >&2
  exit 1
}

[ "$(id -u)" = 0 ] || die "must run as root: image files keep their owners, and Debian images are made with debootstrap and chroot"
mkdir -p "$out"
out=$(cd "$out" && pwd)
# One build at a time per OUTDIR (the cluster script and the tests may both ask for images).
exec 9>"$out/.lock"
flock -n 9 || { echo "build-images: waiting for another build in $out"; flock 9; }

# Scratch space next to the archives (same file system: cp -a of a rootfs stays cheap). Chroot
# builds mount /proc in it; the trap unmounts before removing anything, and rm never crosses
# into another file system.
work=$(mktemp -d "$out/.work.XXXXXX")
cleanup() {
  unmount_under "$work" || true
  for b in "$out"/rootfs/base*.tmp; do unmount_under "$b" || true; done
  rm -rf --one-file-system "$work"
}
trap cleanup EXIT

# listed: "file ref" lines for images.txt, in build order.
listed=()
summary=()

# cached FILE REF: the archive exists, is complete and was written for REF.
cached() {
  [ -s "$out/$1" ] && tar -xOf "$out/$1" manifest.json 2>/dev/null | grep -qF "\"$2\""
}

imagepack=""
# pack ROOTFS REF FILE [imagepack flags]: writes OUTDIR/FILE from ROOTFS.
pack() {
  local rootfs=$1 ref=$2 file=$3
  shift 3
  if [ -z "$imagepack" ]; then
    # A module of its own (hack/imagepack/go.mod), so the operator's go.mod does not carry
    # go-containerregistry.
    imagepack=$work/imagepack
    (cd "$root/hack/imagepack" && CGO_ENABLED=0 go build -trimpath -o "$imagepack" .)
  fi
  "$imagepack" -rootfs "$rootfs" -ref "$ref" -o "$out/$file" "$@"
}

# image FILE REF BUILD-FUNCTION [ARGS]: builds one image unless cached, and records it.
image() {
  local file=$1 ref=$2 fn=$3 start
  shift 3
  listed+=("$file $ref")
  if cached "$file" "$ref" && ! stale "$file"; then
    summary+=("$(printf '%-34s %-50s cached' "$file" "$ref")")
    return
  fi
  echo "build-images: building $ref into $out/$file"
  start=$SECONDS
  rm -f "$out/$file"
  "$fn" "$file" "$ref" "$@"
  summary+=("$(printf '%-34s %-50s built in %ss, %s' "$file" "$ref" $((SECONDS - start)) "$(du -h "$out/$file" | cut -f1)")")
}

# stale FILE: an archive older than what it packs (only the operator's can be).
stale() {
  [ "$1" = "$operator_file" ] && [ "$operator_bin" -nt "$out/$1" ]
}

# nonroot_files DIR: the files of a distroless "static:nonroot" image: users root and nonroot
# (65532), their homes and a world-writable /tmp.
nonroot_files() {
  mkdir -p "$1/etc" "$1/root" "$1/home/nonroot" "$1/tmp"
  printf 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$1/etc/passwd"
  printf 'root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n' >"$1/etc/group"
  chmod 700 "$1/root"
  chown 65532:65532 "$1/home/nonroot"
  chmod 1777 "$1/tmp"
}

# go_version: the Go version of the operator's module, for the temporary modules below.
go_version() {
  awk '$1 == "go" {print $2; exit}' "$root/go.mod"
}

build_pause() {
  local file=$1 ref=$2 src rootfs=$work/pause tag=${2##*:}
  src=$(go mod download -json "k8s.io/kubernetes@$kube_version" | sed -n 's/.*"Dir": "\(.*\)",/\1/p')
  [ -f "$src/build/pause/linux/pause.c" ] || die "no build/pause/linux/pause.c in k8s.io/kubernetes@$kube_version"
  command -v gcc >/dev/null || die "gcc is missing: apt-get install gcc"
  # gcc prints a bare name when it has no static C library to link against.
  case $(gcc -print-file-name=libc.a) in
    /*) ;;
    *) die "gcc cannot link statically (no libc.a): apt-get install libc6-dev" ;;
  esac
  mkdir -p "$rootfs"
  # The flags of build/pause/Makefile, with the tag as its version string.
  gcc -Os -Wall -Werror -static -DVERSION="v$tag-$kube_version" -o "$rootfs/pause" "$src/build/pause/linux/pause.c"
  strip "$rootfs/pause"
  pack "$rootfs" "$ref" "$file" -user 65535:65535 -entrypoint '["/pause"]'
}

build_operator() {
  local file=$1 ref=$2 rootfs=$work/operator
  nonroot_files "$rootfs"
  install -m 0755 "$operator_bin" "$rootfs/manager"
  # The backup Jobs' `manager backup` talks TLS to object storage: the CAs Debian trusts, where
  # distroless keeps them (and Go looks first).
  [ -s /etc/ssl/certs/ca-certificates.crt ] || die "no /etc/ssl/certs/ca-certificates.crt: run hack/install-host-packages.sh"
  install -D -m 0644 /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
  # As the Dockerfile's gcr.io/distroless/static:nonroot image; the Deployment's command is
  # /manager too.
  pack "$rootfs" "$ref" "$file" -user 65532:65532 -workdir / -entrypoint '["/manager"]' \
    -env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
}

build_coredns() {
  local file=$1 ref=$2 rootfs=$work/coredns src=$work/coredns-src
  mkdir -p "$src"
  # hack/coredns/main.go carries `//go:build ignore` to stay out of the operator's module;
  # here it is the whole program (go mod tidy would not see the imports of an ignored file).
  sed '/^\/\/go:build ignore$/d' "$root/hack/coredns/main.go" >"$src/main.go"
  (
    cd "$src"
    go mod init coredns >/dev/null 2>&1
    go mod edit -go="$(go_version)" -require="github.com/coredns/coredns@$coredns_version"
    go mod tidy
    CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o "$rootfs/coredns" .
  )
  nonroot_files "$rootfs"
  # As the official image: distroless static:nonroot, and port 53 bound by the nonroot user
  # through the binary's file capability (setcap cap_net_bind_service=+ep there).
  pack "$rootfs" "$ref" "$file" -user 65532:65532 -workdir / -entrypoint '["/coredns"]' \
    -filecap /coredns=net_bind_service
}

build_local_path_provisioner() {
  local file=$1 ref=$2 rootfs=$work/lpp src=$work/lpp-src
  mkdir -p "$src" "$rootfs/usr/bin"
  (
    cd "$src"
    go mod init lpp >/dev/null 2>&1
    go mod edit -go="$(go_version)" -require="github.com/rancher/local-path-provisioner@$lpp_version" \
      -tool=github.com/rancher/local-path-provisioner
    go mod tidy
    CGO_ENABLED=0 go build -trimpath -ldflags="-s -w -X main.VERSION=$lpp_version" \
      -o "$rootfs/usr/bin/local-path-provisioner" github.com/rancher/local-path-provisioner
  )
  # Upstream's deployment runs `local-path-provisioner ...` from PATH (/usr/bin in its Alpine
  # image); /local-path-provisioner is there too for manifests that name the path.
  ln -s usr/bin/local-path-provisioner "$rootfs/local-path-provisioner"
  mkdir -p "$rootfs/etc" "$rootfs/tmp"
  chmod 1777 "$rootfs/tmp"
  printf 'root:x:0:0:root:/root:/sbin/nologin\n' >"$rootfs/etc/passwd"
  printf 'root:x:0:\n' >"$rootfs/etc/group"
  pack "$rootfs" "$ref" "$file" -workdir / -entrypoint '["/usr/bin/local-path-provisioner"]' \
    -env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
}

build_kube_network_policies() {
  local file=$1 ref=$2 rootfs=$work/knp src=$work/knp-src pkg mod
  mod=$(go mod download -json "sigs.k8s.io/kube-network-policies@$knp_version" | sed -n 's/.*"Dir": "\(.*\)",/\1/p')
  [ -f "$mod/cmd/main.go" ] || die "no cmd/main.go in sigs.k8s.io/kube-network-policies@$knp_version"
  # Built in a copy of the module itself (its own go.mod and go.sum: the dependencies upstream
  # tested), changed in one place: this kernel has no nftables queue expression
  # (CONFIG_NFT_QUEUE), so every queue becomes xtables' NFQUEUE target, which it has.
  cp -r "$mod" "$src"
  chmod -R u+w "$src"
  pkg=$src/pkg/networkpolicy
  sed '/^\/\/go:build ignore$/d' "$root/hack/kube-network-policies/nfqueue_xt.go" >"$pkg/nfqueue_xt.go"
  sed -i -e 's/^\tqueue := &expr\.Queue{Num: uint16(c\.config\.QueueID)}$/\tqueue := nfqueueTarget(uint16(c.config.QueueID), c.config.FailOpen)/' \
    -e '/^\tif c\.config\.FailOpen {$/{N;N;/\n\t\tqueue\.Flag = expr\.QueueFlagBypass\n\t}$/d}' "$pkg/controller.go"
  sed -i 's/&expr\.Queue{Num: uint16(n\.nfQueueID), Flag: expr\.QueueFlagBypass}/nfqueueTarget(uint16(n.nfQueueID), true)/' "$pkg/dnsagent.go"
  # Upstream code that moved would leave a queue expression behind, or fail to build.
  ! grep -n 'expr\.Queue' "$pkg/controller.go" "$pkg/dnsagent.go" ||
    die "kube-network-policies@$knp_version still uses the nftables queue expression there: update hack/build-images.sh"
  [ "$(cat "$pkg/controller.go" "$pkg/dnsagent.go" | grep -c 'nfqueueTarget(')" = 3 ] ||
    die "kube-network-policies@$knp_version: expected 3 queues to replace: update hack/build-images.sh"
  # Pure Go (netlink through mdlayher/netlink and google/nftables): static, as upstream's
  # CGO_ENABLED=0 build.
  mkdir -p "$rootfs/bin"
  (cd "$src" && CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o "$rootfs/bin/netpol" ./cmd)
  nonroot_files "$rootfs"
  # As upstream's distroless static-debian12 image: root (its DaemonSet adds NET_ADMIN),
  # /bin/netpol as the default command. SIGINT to stop: the binary removes its nftables table on
  # SIGINT only, and dies on the runtime's default SIGTERM with the table left behind.
  pack "$rootfs" "$ref" "$file" -workdir / -cmd '["/bin/netpol"]' -stopsignal SIGINT \
    -env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
}

# unmount_under DIR: unmounts whatever a chroot build left mounted under DIR.
unmount_under() {
  local m
  awk -v d="$1/" 'index($2, d) == 1 {print $2}' /proc/mounts | sort -r | while read -r m; do
    umount -l "$m"
  done
}

# debian_base [SUITE]: OUTDIR/rootfs/base (bookworm) or OUTDIR/rootfs/base-SUITE, Debian minbase
# with current updates, made once per suite (debootstrap takes minutes) and copied by every
# Debian image. Only the mirror is needed: no Docker Hub.
debian_base() {
  local suite=${1:-$debian_suite} base
  base=$(debian_base_dir "$suite")
  [ -d "$base" ] && return
  command -v debootstrap >/dev/null || die "debootstrap is missing: apt-get install debootstrap"
  echo "build-images: debootstrap $suite from $debian_mirror into $base"
  mkdir -p "$out/rootfs"
  unmount_under "$base.tmp"
  rm -rf --one-file-system "$base.tmp"
  debootstrap --variant=minbase "$suite" "$base.tmp" "$debian_mirror"
  unmount_under "$base.tmp"
  # This host's name and debootstrap's log are no part of an image (the runtime provides
  # /etc/hostname).
  rm -f "$base.tmp/etc/hostname" "$base.tmp/var/log/bootstrap.log"
  # Updates and security fixes come from the same mirror host, as in Debian's official images.
  rm -f "$base.tmp/etc/apt/sources.list"
  cat >"$base.tmp/etc/apt/sources.list.d/debian.sources" <<SOURCES
Types: deb
URIs: $debian_mirror
Suites: $suite $suite-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${debian_mirror%/debian}/debian-security
Suites: $suite-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
  # As the -slim images: no manuals, documentation (but copyrights) or translations.
  cat >"$base.tmp/etc/dpkg/dpkg.cfg.d/slim" <<'SLIM'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
SLIM
  find "$base.tmp/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
  rm -rf "$base.tmp/usr/share/man/"* "$base.tmp/usr/share/info/"* "$base.tmp/usr/share/locale/"*
  in_chroot "$base.tmp" apt-get update -qq
  in_chroot "$base.tmp" apt-get upgrade -qq -y
  chroot_clean "$base.tmp"
  mv "$base.tmp" "$base"
}

# debian_base_dir SUITE: where the base of SUITE is kept (bookworm's where it always was).
debian_base_dir() {
  if [ "$1" = "$debian_suite" ]; then
    echo "$out/rootfs/base"
  else
    echo "$out/rootfs/base-$1"
  fi
}

# debian_rootfs NAME [SUITE]: a fresh copy of the Debian base of SUITE (default bookworm) under
# the scratch space.
debian_rootfs() {
  local suite=${2:-$debian_suite}
  debian_base "$suite"
  cp -a "$(debian_base_dir "$suite")" "$work/$1"
}

# postgres_suite MAJOR: the Debian release whose own packages carry PostgreSQL MAJOR (each
# release ships one major: no third-party repository).
postgres_suite() {
  case $1 in
    15) echo bookworm ;;
    17) echo trixie ;;
    *) die "no Debian release known to carry PostgreSQL $1 (15: bookworm, 17: trixie)" ;;
  esac
}

# in_chroot DIR COMMAND...: runs COMMAND in DIR as root with a clean environment, /proc mounted
# and this host's name servers (removed again by chroot_clean). Services never start there.
in_chroot() {
  local dir=$1
  shift
  if ! mountpoint -q "$dir/proc"; then
    mount -t proc proc "$dir/proc"
  fi
  # Removed first: written through a symlink, these could land on this host's files.
  rm -f "$dir/etc/resolv.conf" "$dir/usr/sbin/policy-rc.d"
  cp /etc/resolv.conf "$dir/etc/resolv.conf"
  printf '#!/bin/sh\nexit 101\n' >"$dir/usr/sbin/policy-rc.d"
  chmod 755 "$dir/usr/sbin/policy-rc.d"
  chroot "$dir" /usr/bin/env -i HOME=/root LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$@"
}

# chroot_clean DIR: removes what a build leaves in DIR and no image should carry.
chroot_clean() {
  local dir=$1
  unmount_under "$dir"
  rm -f "$dir/etc/resolv.conf" "$dir/usr/sbin/policy-rc.d"
  rm -rf "$dir/var/lib/apt/lists/"* "$dir/var/cache/apt/"* "$dir/var/cache/debconf/"*-old \
    "$dir/var/log/apt/"* "$dir/root/.cache" "$dir/tmp/"*
  find "$dir/var/log" -maxdepth 1 -type f \( -name dpkg.log -o -name alternatives.log \) -exec truncate -s 0 {} +
}

build_debian() {
  local file=$1 ref=$2
  debian_rootfs debian
  pack "$work/debian" "$ref" "$file" -cmd '["bash"]' \
    -env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
}

build_postgres() {
  local file=$1 ref=$2 postgres_version=$3 r=$work/postgres-$3 bin=/usr/lib/postgresql/$3/bin b
  debian_rootfs "postgres-$postgres_version" "$(postgres_suite "$postgres_version")"
  # The official image's user: uid and gid 999, made before the packages so that
  # postgresql-common takes them as they are. The operator runs the pod as 999, and initdb
  # refuses a uid without a passwd entry.
  in_chroot "$r" groupadd -r --gid=999 postgres
  in_chroot "$r" useradd -r -g postgres --uid=999 --home-dir=/var/lib/postgresql --shell=/bin/bash postgres
  in_chroot "$r" install -d -o postgres -g postgres /var/lib/postgresql
  in_chroot "$r" apt-get update -qq
  in_chroot "$r" apt-get install -qq -y --no-install-recommends postgresql-common
  # No cluster at install time: the operator's init container runs initdb on its volume.
  sed -ri 's/#(create_main_cluster) .*$/\1 = false/' "$r/etc/postgresql-common/createcluster.conf"
  grep -q '^create_main_cluster = false' "$r/etc/postgresql-common/createcluster.conf" ||
    die "could not turn off create_main_cluster in postgresql-common's createcluster.conf"
  in_chroot "$r" apt-get install -qq -y --no-install-recommends "postgresql-$postgres_version"
  # What the pod runs: the server and its probe, and the tools `manager db` runs.
  for b in initdb postgres pg_isready psql pg_dump pg_restore; do
    [ -x "$r$bin/$b" ] || die "postgresql-$postgres_version did not install $bin/$b"
  done
  [ -z "$(ls -A "$r/etc/postgresql" 2>/dev/null)" ] || die "the postgres package created a cluster"
  # The sockets' directory, writable by any uid as in the official image (the operator mounts
  # an emptyDir there); the data directory the image declares as its volume. Made inside the
  # chroot: /var/run is an absolute symlink to /run, which from outside is this host's.
  in_chroot "$r" install -d -o postgres -g postgres -m 3777 /var/run/postgresql
  in_chroot "$r" install -d -o postgres -g postgres -m 1777 /var/lib/postgresql/data
  # ssl-cert made a "snakeoil" key pair for this host's name: a private key every copy of the
  # image would share. PostgreSQL runs without TLS here; a TLS setup brings its own.
  in_chroot "$r" sh -c 'find /etc/ssl/certs -lname ssl-cert-snakeoil.pem -delete &&
    rm -f /etc/ssl/certs/ssl-cert-snakeoil.pem /etc/ssl/private/ssl-cert-snakeoil.key'
  chroot_clean "$r"
  # PATH and PGDATA as the official image sets them; SIGINT is PostgreSQL's fast shutdown,
  # which the runtime sends on stop instead of SIGTERM's wait for every client to leave.
  pack "$r" "$ref" "$file" -cmd '["postgres"]' -stopsignal SIGINT \
    -env "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$bin" \
    -env PG_MAJOR="$postgres_version" -env PGDATA=/var/lib/postgresql/data -env LANG=C.UTF-8
}

# python_rootfs: Debian with its Python (3.11 in bookworm) and the official Kinto image's user
# app (uid and gid 10001, home /app), made once per run under the scratch space and copied for
# each Kinto release.
python_rootfs() {
  local r=$work/python
  [ -d "$r" ] && return
  debian_rootfs python
  in_chroot "$r" apt-get update -qq
  in_chroot "$r" apt-get install -qq -y --no-install-recommends python3 python3-venv
  in_chroot "$r" groupadd --gid 10001 app
  in_chroot "$r" useradd --uid 10001 --gid 10001 --home-dir /app --create-home app
  chroot_clean "$r"
}

# kinto_rootfs VERSION: the file system of the Kinto image of VERSION, in $work/kinto-VERSION.
kinto_rootfs() {
  local version=$1 r=$work/kinto-$1 ca v pip_env=()
  [ -d "$r" ] && return
  python_rootfs
  cp -a "$work/python" "$r"
  # pip in the chroot trusts what this host trusts (its CA bundle, which holds any intercepting
  # proxy's certificate) and goes through the same index and proxies; the bundle goes away with
  # /tmp. Debian's minbase has no CA certificates of its own.
  ca=${PIP_CERT:-${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}}
  [ -s "$ca" ] || die "no CA bundle at $ca for pip (set PIP_CERT)"
  cp "$ca" "$r/tmp/build-ca.crt"
  pip_env=(PIP_CERT=/tmp/build-ca.crt PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1)
  for v in PIP_INDEX_URL PIP_EXTRA_INDEX_URL PIP_TRUSTED_HOST PIP_DEFAULT_TIMEOUT \
    HTTP_PROXY HTTPS_PROXY NO_PROXY http_proxy https_proxy no_proxy; do
    [ -z "${!v:-}" ] || pip_env+=("$v=${!v}")
  done
  # The official image's layout: a virtualenv in /opt/venv with the same extras as
  # hack/install-kinto.sh (postgresql for the backends, monitoring for the prometheus plugin).
  in_chroot "$r" python3 -m venv /opt/venv
  in_chroot "$r" env "${pip_env[@]}" /opt/venv/bin/pip install --quiet "kinto[postgresql,monitoring]==$version"
  [ "$(in_chroot "$r" /opt/venv/bin/kinto version | tail -n 1)" = "$version" ] ||
    die "/opt/venv/bin/kinto in the image does not report version $version"
  # The official image's default configuration (memory backends); the operator mounts its own
  # over /etc/kinto.
  in_chroot "$r" /opt/venv/bin/kinto init --ini /etc/kinto/kinto.ini --host 0.0.0.0 \
    --backend=memory --cache-backend=memory >/dev/null
  chroot_clean "$r"
}

# pack_kinto ROOTFS REF FILE: the official image's environment and default command (migrate,
# then start), expanded by the container's sh.
pack_kinto() {
  # shellcheck disable=SC2016
  pack "$1" "$2" "$3" -user 10001:10001 -workdir /app \
    -env PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    -env LANG=C.UTF-8 -env KINTO_INI=/etc/kinto/kinto.ini -env PORT=8888 \
    -env PROMETHEUS_MULTIPROC_DIR=/tmp/metrics \
    -cmd '["sh", "-c", "kinto migrate --ini $KINTO_INI && kinto start --ini $KINTO_INI --port $PORT"]'
}

build_kinto() {
  kinto_rootfs "$3"
  pack_kinto "$work/kinto-$3" "$2" "$1"
}

# build_faulty_kinto FILE REF FAULT: Kinto $faulty_kinto_base whose `kinto` fails one way, for the
# tests of the operator's rollback: FAULT migrate-fails makes `kinto migrate` fail,
# never-ready makes `kinto start` never serve. Every other command is Kinto's own.
build_faulty_kinto() {
  local file=$1 ref=$2 fault=$3 r=$work/kinto-$3
  kinto_rootfs "$faulty_kinto_base"
  cp -a "$work/kinto-$faulty_kinto_base" "$r"
  mv "$r/opt/venv/bin/kinto" "$r/opt/venv/bin/kinto.real"
  # The wrapper's own "$1" and "$@", not this script's.
  # shellcheck disable=SC2016
  case $fault in
    migrate-fails)
      printf '#!/bin/sh\nif [ "$1" = migrate ]; then echo "kinto migrate: this test release fails its migration" >&2; exit 1; fi\nexec /opt/venv/bin/kinto.real "$@"\n' ;;
    never-ready)
      printf '#!/bin/sh\nif [ "$1" = start ]; then echo "kinto start: this test release never serves" >&2; exec sleep infinity; fi\nexec /opt/venv/bin/kinto.real "$@"\n' ;;
    *) die "unknown fault $fault" ;;
  esac >"$r/opt/venv/bin/kinto"
  chmod 755 "$r/opt/venv/bin/kinto"
  pack_kinto "$r" "$ref" "$file"
}

for img in $images; do
  case $img in
    pause) image pause.tar "$pause_ref" build_pause ;;
    operator)
      if [ ! -x "$operator_bin" ]; then
        [ "$operator_bin" = "$root/bin/manager" ] || die "no $operator_bin"
        echo "build-images: no bin/manager, running make build"
        make -C "$root" build
      fi
      image "$operator_file" "$operator_ref" build_operator
      ;;
    coredns) image coredns.tar "$coredns_ref" build_coredns ;;
    local-path-provisioner) image local-path-provisioner.tar "$lpp_ref" build_local_path_provisioner ;;
    kube-network-policies) image kube-network-policies.tar "$knp_ref" build_kube_network_policies ;;
    debian) image debian.tar "$debian_ref" build_debian ;;
    postgres)
      for v in $postgres_versions; do
        image "postgres-$v.tar" "docker.io/library/postgres:$v" build_postgres "$v"
      done
      ;;
    kinto)
      for v in $kinto_versions; do
        image "kinto-server-$v.tar" "docker.io/kinto/kinto-server:$v" build_kinto "$v"
      done
      ;;
    kinto-faulty)
      image kinto-server-26.90.0.tar docker.io/kinto/kinto-server:26.90.0 build_faulty_kinto migrate-fails
      image kinto-server-26.91.0.tar docker.io/kinto/kinto-server:26.91.0 build_faulty_kinto never-ready
      ;;
    *) die "unknown image '$img' in IMAGES" ;;
  esac
done

# images.txt: the lines of earlier runs (with other IMAGES) stay where they were while their
# archive is there, with this run's ref; this run's new archives follow.
{
  if [ -f "$out/images.txt" ]; then
    while read -r f r; do
      [ -s "$out/$f" ] || continue
      for l in "${listed[@]}"; do
        if [ "${l%% *}" = "$f" ]; then r=${l#* }; fi
      done
      echo "$f $r"
    done <"$out/images.txt"
  fi
  for l in "${listed[@]}"; do
    grep -q "^${l%% *} " "$out/images.txt" 2>/dev/null || echo "$l"
  done
} >"$out/images.txt.tmp"
mv "$out/images.txt.tmp" "$out/images.txt"

printf '%s\n' "${summary[@]}"
echo "build-images: $out/images.txt lists $(wc -l <"$out/images.txt") images"
