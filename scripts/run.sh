#!/usr/bin/env bash
# Runs the fraud example on this machine: a Sluice node with every role and
# its embedded broker, a generator producing live card transactions into
# it, and the features of user u00001 printed every 5 seconds.
# Ctrl-C stops the generator, then the node, and waits for it to shut down.
#
# `make run` builds the binaries and calls this. Settings, from the
# environment:
#   RATE           events per second (default 200)
#   DATA_DIR       the node's data directory (default .data/run)
#   WATCH          the entity whose features are printed (default user_id=u00001)
#   READY_TIMEOUT  seconds to wait for the node to be ready (default 60)
set -euo pipefail
cd "$(dirname "$0")/.."

readonly SLUICE=bin/sluice GEN=bin/fraud-gen WATCHER=bin/fraud-watch
readonly REPO=examples/fraud/features
readonly SERVER=http://127.0.0.1:8080
readonly SERVICE=fraud_model_v1
readonly RATE=${RATE:-200}
readonly DATA_DIR=${DATA_DIR:-.data/run}
readonly WATCH=${WATCH:-user_id=u00001}
readonly LOG=.data/run.log PRODUCE_LOG=.data/produce.log
readonly READY_TIMEOUT=${READY_TIMEOUT:-60} STOP_TIMEOUT=30

sluice_pid='' gen_pid='' produce_pid='' tmp='' stopped_rc=0

die() {
	echo "run: $*" >&2
	exit 1
}

# show_log prints the last lines of a log, indented.
show_log() {
	echo "--- last lines of $1 ---" >&2
	tail -n 30 "$1" | sed 's/^/  /' >&2 || true
	echo "---" >&2
}

# alive reports whether a process this script started is still running.
alive() {
	[[ -n $1 ]] && kill -0 "$1" 2>/dev/null
}

# stop_pid sends SIGTERM to a process and waits up to $2 seconds for it to
# exit, then kills it. It leaves the exit status in stopped_rc.
stop_pid() {
	local pid=$1 timeout=$2 name=$3 waited=0
	if alive "$pid"; then
		kill -TERM "$pid" 2>/dev/null || true
	fi
	while alive "$pid" && ((waited < timeout * 10)); do
		sleep 0.1
		waited=$((waited + 1))
	done
	if alive "$pid"; then
		echo "run: $name did not stop within ${timeout}s; killing it" >&2
		kill -KILL "$pid" 2>/dev/null || true
	fi
	stopped_rc=0
	wait "$pid" 2>/dev/null || stopped_rc=$?
}

cleanup() {
	trap - INT TERM EXIT
	echo
	echo "run: stopping"
	# The generator first: the producer then reads the end of its input,
	# sends what it holds and exits by itself.
	if [[ -n $gen_pid ]]; then
		stop_pid "$gen_pid" 5 generator
	fi
	if [[ -n $produce_pid ]]; then
		local waited=0
		while alive "$produce_pid" && ((waited < 100)); do
			sleep 0.1
			waited=$((waited + 1))
		done
		stop_pid "$produce_pid" 5 producer
	fi
	if [[ -n $sluice_pid ]]; then
		stop_pid "$sluice_pid" "$STOP_TIMEOUT" sluice
		if ((stopped_rc == 0)); then
			echo "run: sluice stopped cleanly (data kept in $DATA_DIR, log in $LOG)"
		else
			echo "run: sluice exited with status $stopped_rc" >&2
			show_log "$LOG"
		fi
	fi
	if [[ -n $tmp ]]; then
		rm -rf "$tmp"
	fi
}

for bin in "$SLUICE" "$GEN" "$WATCHER"; do
	[[ -x $bin ]] || die "$bin is missing: start the example with 'make run', which builds it"
done
command -v curl >/dev/null 2>&1 || die "curl is missing: install it (apt-get install curl)"
if curl -fs -o /dev/null --max-time 2 "$SERVER/healthz"; then
	die "something already answers at $SERVER (another sluice?): stop it first"
fi

mkdir -p "$DATA_DIR"
: >"$LOG"
: >"$PRODUCE_LOG"
tmp=$(mktemp -d)
mkfifo "$tmp/events"

trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Job control puts each background process in its own process group, so
# Ctrl-C reaches this script alone and cleanup stops them in order.
set -m
"$SLUICE" up --repo "$REPO" --data-dir "$DATA_DIR" </dev/null >>"$LOG" 2>&1 &
sluice_pid=$!
set +m

echo "run: starting sluice (log: $LOG)"
start=$SECONDS
until curl -fs -o /dev/null --max-time 2 "$SERVER/readyz"; do
	if ! alive "$sluice_pid"; then
		sluice_pid=''
		show_log "$LOG"
		die "sluice exited before it was ready"
	fi
	if ((SECONDS - start >= READY_TIMEOUT)); then
		show_log "$LOG"
		die "sluice was not ready within ${READY_TIMEOUT}s ($SERVER/readyz)"
	fi
	sleep 0.5
done
echo "run: sluice is ready at $SERVER after $((SECONDS - start))s"

set -m
"$SLUICE" produce transactions - --server "$SERVER" --rate "$RATE" <"$tmp/events" >>"$PRODUCE_LOG" 2>&1 &
produce_pid=$!
"$GEN" -rate "$RATE" </dev/null >"$tmp/events" &
gen_pid=$!
set +m

key=${WATCH%%=*} value=${WATCH#*=}
cat <<EOF
run: producing $RATE transactions/s into stream "transactions" (log: $PRODUCE_LOG)

Look features up, from another terminal:
  $SLUICE get --entity $key=$value --service $SERVICE
  curl -s $SERVER/get-online-features -H 'Content-Type: application/json' \\
    -d '{"feature_service": "$SERVICE", "entities": {"$key": ["$value", "u00002"]}}'

Query the offline store with SQL (ClickHouse; rows arrive within about 10 s):
  $SLUICE sql "SELECT user_id, count() AS n, round(sum(amount), 2) AS total FROM sluice.transactions GROUP BY user_id ORDER BY n DESC LIMIT 5"

Features of $key=$value, every 5 s (Ctrl-C stops everything):
EOF

while true; do
	if ! alive "$sluice_pid"; then
		sluice_pid=''
		show_log "$LOG"
		die "sluice stopped unexpectedly"
	fi
	if ! alive "$produce_pid"; then
		produce_pid=''
		show_log "$PRODUCE_LOG"
		die "the producer stopped unexpectedly"
	fi
	"$WATCHER" -server "$SERVER" -service "$SERVICE" -entity "$WATCH" -n 1 || true
	sleep 5
done
