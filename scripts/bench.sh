#!/usr/bin/env bash
# Runs the benchmarks of DESIGN.md section 10 with `sluice bench` and prints
# their summary lines as one table. NAME=x runs one (stream, freshness,
# ingest, offline); NAME=go runs the Go micro-benchmarks of every package
# instead.
set -euo pipefail
cd "$(dirname "$0")/.."

go=${GO:-go}
name=${NAME:-}

if [[ $name == go ]]; then
	exec "$go" test -run '^$' -bench . -benchtime 2s ./...
fi

"$go" build -o bin/sluice ./cmd/sluice
names=(stream freshness ingest offline)
if [[ -n $name ]]; then
	names=("$name")
fi

summary=()
for n in "${names[@]}"; do
	echo "bench: $n" >&2
	while IFS= read -r line; do
		summary+=("$line")
	done < <(bin/sluice bench "$n")
done

echo
echo "== summary =="
printf '%s\n' "${summary[@]}"
