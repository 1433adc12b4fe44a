#!/usr/bin/env bash
# Installs the programs the tests use when they are missing: kcat (a plain
# Kafka client, to check that Sluice speaks to any producer),
# clickhouse-server (the offline store's SQL side, which the tests run as a
# real server) and pandas (a peer of the point-in-time benchmark, whose
# values the bench module's tests check).
#
# When a program cannot be installed: with CI=true this fails, because CI
# must run every test; elsewhere it warns, and the tests that need the
# program skip.
set -euo pipefail

# command the tests run -> the Debian package that provides it
declare -A packages=(
	[kcat]=kcat
	[clickhouse-server]=clickhouse-server
	[pandas]=python3-pandas
)

# have reports whether a program is installed. Servers land in /usr/sbin,
# which a non-root PATH may lack.
have() {
	if [[ $1 == pandas ]]; then
		/usr/bin/python3 -c 'import pandas' >/dev/null 2>&1 || python3 -c 'import pandas' >/dev/null 2>&1
		return
	fi
	command -v "$1" >/dev/null 2>&1 || [[ -x /usr/sbin/$1 ]]
}

missing=()
for cmd in "${!packages[@]}"; do
	if ! have "$cmd"; then
		missing+=("${packages[$cmd]}")
	fi
done
if ((${#missing[@]} == 0)); then
	echo "deps: all present (${!packages[*]})"
	exit 0
fi

fail() {
	if [[ ${CI:-} == true ]]; then
		echo "deps: error: $1" >&2
		echo "deps: CI runs every test, so it needs: ${missing[*]}" >&2
		exit 1
	fi
	echo "deps: warning: $1; the tests that need it will skip" >&2
	exit 0
}

sudo=()
if ((EUID != 0)); then
	if command -v sudo >/dev/null 2>&1; then
		sudo=(sudo)
	else
		fail "not root and no sudo, so cannot install ${missing[*]} (install them with your package manager)"
	fi
fi
if ! command -v apt-get >/dev/null 2>&1; then
	fail "no apt-get, so cannot install ${missing[*]} (install them with your package manager)"
fi

echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
if ! "${sudo[@]}" apt-get update -qq; then
	fail "apt-get update failed"
fi
if ! "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"; then
	fail "apt-get install ${missing[*]} failed"
fi

for cmd in "${!packages[@]}"; do
	if ! have "$cmd"; then
		fail "$cmd is still missing after installing ${packages[$cmd]}"
	fi
done
echo "deps: installed ${missing[*]}"
