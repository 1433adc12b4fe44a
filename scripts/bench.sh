#!/usr/bin/env bash
# Runs the Go benchmarks. With NAME set, runs every benchmark of the packages
# whose import path contains NAME, or, when no package matches, the
# benchmarks whose name matches NAME in every package.
set -euo pipefail
cd "$(dirname "$0")/.."

go=${GO:-go}
name=${NAME:-}
flags=(-run '^$' -benchtime 2s)

if [[ -z $name ]]; then
	exec "$go" test "${flags[@]}" -bench . ./...
fi

mapfile -t pkgs < <("$go" list ./... | grep -iF -- "$name" || true)
if ((${#pkgs[@]} > 0)); then
	echo "bench: packages matching '$name': ${pkgs[*]}"
	exec "$go" test "${flags[@]}" -bench . "${pkgs[@]}"
fi
echo "bench: no package matches '$name'; running benchmarks named like it"
exec "$go" test "${flags[@]}" -bench "$name" ./...
