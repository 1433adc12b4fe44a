#!/usr/bin/env python3
"""The pandas peer of Sluice's point-in-time benchmark: merge_asof for the
last-value features.

Debian ships pandas without a Parquet engine (no python3-pyarrow, no
python3-fastparquet), so the Go side has DuckDB export the very rows Sluice
read from Parquet to CSV: the events (user_id, ts and _offset in µs and
offsets, the fields) and the spine (row, user_id, timestamp in µs). This
script times loading them apart from its own work: sorting both sides and
merge_asof. It writes the result (row, then one column per feature, empty
for null) to --out and prints its timings as one JSON object on stdout.

    python3 pit_pandas.py --events E.csv --spine S.csv --out R.csv \
        --feature u__last_v0=v0 --feature u__last_v1=v1 ...
"""
import argparse
import json
import sys
import time

import pandas as pd


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--events", required=True, help="CSV of the events")
    p.add_argument("--spine", required=True, help="CSV of the spine")
    p.add_argument("--out", required=True, help="CSV to write the result to")
    p.add_argument("--feature", action="append", required=True, metavar="COLUMN=FIELD",
                   help="a last-value feature: its column and the event field it reads")
    args = p.parse_args()
    feats = [f.split("=", 1) for f in args.feature]
    fields = list(dict.fromkeys(field for _, field in feats))

    start = time.perf_counter()
    events = pd.read_csv(
        args.events, usecols=["user_id", "ts", "_offset", *fields],
        dtype={"user_id": str, "ts": "int64", "_offset": "int64", **{f: "float64" for f in fields}},
        float_precision="round_trip")
    spine = pd.read_csv(args.spine, dtype={"row": "int64", "user_id": str, "timestamp": "int64"})
    events["ts"] = pd.to_datetime(events["ts"], unit="us", utc=True)
    spine["timestamp"] = pd.to_datetime(spine["timestamp"], unit="us", utc=True)
    loaded = time.perf_counter()

    # merge_asof takes, among right rows with equal keys, the last one:
    # sorting the events by (ts, _offset) gives ties to the higher offset.
    events = events.sort_values(["ts", "_offset"])
    spine = spine.sort_values("timestamp", kind="stable")
    joined = pd.merge_asof(spine, events, by="user_id", left_on="timestamp", right_on="ts",
                           allow_exact_matches=False, direction="backward")
    out = pd.DataFrame({"row": joined["row"].to_numpy()})
    for column, field in feats:
        out[column] = joined[field].to_numpy()
    joined_at = time.perf_counter()

    out.to_csv(args.out, index=False)
    json.dump({"load_seconds": loaded - start, "join_seconds": joined_at - loaded, "rows": len(out)}, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
