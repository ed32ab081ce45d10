#!/usr/bin/env bash
# Install the Debian packages central_hub needs, only those missing.
set -euo pipefail

packages=(
	build-essential pkg-config iproute2 python3 curl
	postgresql-15 postgresql-client-15 postgresql-server-dev-15 libpq-dev
	postgresql-15-pgtap libtap-parser-sourcehandler-pgtap-perl
	libnats-dev nats-server libcurl4-openssl-dev libmicrohttpd-dev
	clang libclang-rt-14-dev wrk
)

missing=()
for p in "${packages[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing+=("$p")
	fi
done

if [ ${#missing[@]} -eq 0 ]; then
	exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "central_hub: missing packages: ${missing[*]} (run as root to install them)" >&2
	exit 1
fi
echo "central_hub: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian's postgresql-common creates and starts a default cluster on
# install; the hub runs its own clusters, so that one is left alone.
