#!/usr/bin/env bash
# Runs the benchmarks of DESIGN.md section 10 with `sluice bench` and prints
# their summary lines as one table. NAME=x runs one (stream, freshness,
# ingest, offline, pit, memory); NAME=go runs the Go micro-benchmarks of
# every package instead. pit also runs its peers (DuckDB, pandas) from the
# bench module on the same files.
set -euo pipefail
cd "$(dirname "$0")/.."

go=${GO:-go}
name=${NAME:-}

if [[ $name == go ]]; then
	exec "$go" test -run '^$' -bench . -benchtime 2s ./...
fi

"$go" build -o bin/sluice ./cmd/sluice
names=(stream freshness ingest offline pit memory)
if [[ -n $name ]]; then
	names=("$name")
fi

summary=()
for n in "${names[@]}"; do
	echo "bench: $n" >&2
	if [[ $n == pit ]]; then
		dir=$(mktemp -d)
		bin/sluice bench pit --dir "$dir" >/dev/null
		while IFS= read -r line; do
			summary+=("$line")
		done < <(cd bench && "$go" run ./cmd/pitpeers "$dir")
		rm -rf "$dir"
		continue
	fi
	while IFS= read -r line; do
		summary+=("$line")
	done < <(bin/sluice bench "$n")
done

echo
echo "== summary =="
printf '%s\n' "${summary[@]}"
