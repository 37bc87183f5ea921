#!/usr/bin/env bash
# Installs, from Debian's packages, what the tests need on the machine itself and a bare machine
# lacks: PostgreSQL (the real-Kinto tests), the node of the local cluster (containerd, runc, the
# CNI plugins, iptables, conntrack), debootstrap, which builds the images' Debian root file
# systems, the CA certificates the operator's image carries, shellcheck (`make verify`), and
# Chromium, the headless browser the members' page tests drive (test/portal).
# Packages already installed are left alone. Needs root.
#
# Usage: hack/install-host-packages.sh
set -euo pipefail

# Each package, and a file (a glob) that shows it is installed.
declare -A wanted=(
  [postgresql]='/usr/lib/postgresql/*/bin/initdb'
  [containerd]=/usr/bin/containerd
  [runc]=/usr/sbin/runc
  [containernetworking-plugins]=/usr/lib/cni/bridge
  [iptables]=/usr/sbin/iptables
  [conntrack]=/usr/sbin/conntrack
  [debootstrap]=/usr/sbin/debootstrap
  [ca-certificates]=/etc/ssl/certs/ca-certificates.crt
  [shellcheck]=/usr/bin/shellcheck
  [chromium]=/usr/bin/chromium
)
missing=()
for pkg in "${!wanted[@]}"; do
  compgen -G "${wanted[$pkg]}" >/dev/null || missing+=("$pkg")
done
if ((${#missing[@]} == 0)); then
  echo "host packages: all present"
  exit 0
fi
[ "$(id -u)" = 0 ] || { echo "install-host-packages: root is needed to install ${missing[*]}" >&2; exit 1; }

# The real-Kinto tests run a throw-away PostgreSQL of their own; Debian's package would also
# create and start a default cluster, which nothing here needs.
mkdir -p /etc/postgresql-common/createcluster.d
echo "create_main_cluster = false" >/etc/postgresql-common/createcluster.d/kinto-operator.conf
echo "host packages: installing ${missing[*]}"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
