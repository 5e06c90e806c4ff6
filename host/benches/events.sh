#!/usr/bin/env bash
# What change events cost the IdP's writes: PATCH (active) and POST /Users throughput of the
# release binary with no webhook endpoint and with one endpoint subscribed to every event (a
# local receiver that answers 204), and optionally of a baseline binary that writes no events
# at all, interleaved round by round in one run. Prints a Markdown table: req/s, the server's
# CPU µs per request (from /proc), and each configuration's ratio to the first one.
#
#   host/benches/events.sh [--users N] [--duration SECS] [--connections C] [--rounds R]
#                          [--baseline BIN]
#
#   --users N        users preloaded with `scimlet import` (10000)
#   --duration SECS  length of each scenario (10)
#   --connections C  wrk connections (16)
#   --rounds R       rounds; each runs every configuration once, in turn (2)
#   --baseline BIN   also measure this scimlet binary (e.g. one built before events existed)
#
# Needs wrk (Debian package), python3 and curl. Builds `scimlet` in release mode and the
# `loader` and `receiver` benches first (CARGO_TARGET_DIR is honoured). The receiver
# (host/benches/receiver.rs) verifies every signature with one thread; its CPU per event is
# printed apart from the server's.
set -euo pipefail

USERS=10000
DURATION=10
CONNS=16
ROUNDS=2
BASELINE=""
while [ $# -gt 0 ]; do
  case "$1" in
    --users) USERS="$2"; shift 2 ;;
    --duration) DURATION="$2"; shift 2 ;;
    --connections) CONNS="$2"; shift 2 ;;
    --rounds) ROUNDS="$2"; shift 2 ;;
    --baseline) BASELINE="$2"; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
LUA="$ROOT/host/benches/compare.lua"
WORK="$(mktemp -d)"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
log() { echo "[events] $*" >&2; }

log "building (cargo build --release -p scimlet; loader bench)"
(cd "$ROOT" && cargo build --release -p scimlet >&2)
bench_bin() {
  local b
  b="$(cd "$ROOT" && cargo bench -p scimlet --bench "$1" --no-run 2>&1 |
    sed -n 's/.*Executable .*(\(.*\)).*/\1/p' | tail -n1)"
  case "$b" in /*) echo "$b" ;; *) echo "$ROOT/$b" ;; esac
}
LOADER="$(bench_bin loader)"
RECEIVER="$(bench_bin receiver)"
cp "${CARGO_TARGET_DIR:-$ROOT/target}/release/scimlet" "$WORK/scimlet"

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
wait_http() {
  for _ in $(seq 600); do
    curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "nothing answers at $1" >&2
  return 1
}
proc_jiffies() { sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }

# The receiver (host/benches/receiver.rs, one thread): verifies each signature, answers 204 and
# counts; started once the endpoint's secret is known.
RPORT="$(free_port)"

# The loader's dump (which lists the users for wrk) wants the team "Big" to exist.
{ echo '{"type":"team","name":"Big"}'
awk -v n="$USERS" 'BEGIN { for (i = 0; i < n; i++) printf "{\"type\":\"user\",\"userName\":\"user-%06d@bench.example\",\"givenName\":\"Bench\",\"familyName\":\"User %d\"}\n", i, i }'
} >"$WORK/users.jsonl"

CONFIGS=()
declare -A BIN_OF=([none]="$WORK/scimlet" [webhook]="$WORK/scimlet")
if [ -n "$BASELINE" ]; then
  cp "$BASELINE" "$WORK/baseline"
  CONFIGS+=(baseline)
  BIN_OF[baseline]="$WORK/baseline"
fi
CONFIGS+=(none)
if "$WORK/scimlet" webhook --help >/dev/null 2>&1; then
  CONFIGS+=(webhook)
else
  log "this scimlet has no webhook command: measuring without the webhook configuration"
fi

# One server per configuration, preloaded alike, started once.
declare -A PORT TOKEN SPID
for c in "${CONFIGS[@]}"; do
  bin="${BIN_OF[$c]}" data="$WORK/data-$c"
  TOKEN[$c]="$("$bin" tenant create bench --data "$data" 2>/dev/null | tail -n1)"
  "$bin" import bench "$WORK/users.jsonl" --data "$data" >/dev/null 2>&1
  if [ "$c" = webhook ]; then
    SECRET="$("$bin" webhook add bench "http://127.0.0.1:$RPORT/hook" --data "$data" --webhook-allow-private | tail -n1)"
    # A new endpoint starts at the feed's end: the import's events are not delivered to it.
    BEFORE_ENDPOINT="$("$bin" events bench --data "$data" | wc -l)"
    "$RECEIVER" "$RPORT" "$SECRET" &
    RPID=$!
    PIDS+=("$RPID")
    wait_http "http://127.0.0.1:$RPORT/"
  fi
  PORT[$c]="$(free_port)"
  NO_COLOR=1 SCIMLET_WEBHOOK_ALLOW_PRIVATE=true "$bin" serve --listen "127.0.0.1:${PORT[$c]}" --data "$data" \
    >"$WORK/serve-$c.log" 2>&1 &
  SPID[$c]=$!
  PIDS+=("${SPID[$c]}")
  wait_http "http://127.0.0.1:${PORT[$c]}/healthz"
  mkdir -p "$WORK/ids-$c"
  "$LOADER" dump --base "http://127.0.0.1:${PORT[$c]}/scim/v2" --token "${TOKEN[$c]}" --out "$WORK/ids-$c" >/dev/null 2>&1
done

declare -A REQS CPU
for round in $(seq "$ROUNDS"); do
  for s in patch_active post; do
    for c in "${CONFIGS[@]}"; do
      j0="$(proc_jiffies "${SPID[$c]}")"
      out="$(SCENARIO="$s" BENCH_DIR="$WORK/ids-$c" BASE_PATH=/scim/v2 BENCH_TOKEN="${TOKEN[$c]}" \
        RUN_TAG="r$round$c$RANDOM" WRK_THREADS=1 \
        wrk -t1 -c"$CONNS" -d"${DURATION}s" --timeout 10s -s "$LUA" "http://127.0.0.1:${PORT[$c]}" 2>&1 |
        grep '^RESULT' || true)"
      j1="$(proc_jiffies "${SPID[$c]}")"
      n="$(sed -n 's/.* requests=\([0-9]*\).*/\1/p' <<<" $out")"
      bad="$(sed -n 's/.* non2xx=\([0-9]*\).*/\1/p' <<<" $out")"
      [ "${bad:-0}" -gt 0 ] && log "$c $s: $bad non-2xx answers"
      REQS[$c:$s]="$(( ${REQS[$c:$s]:-0} + ${n:-0} ))"
      CPU[$c:$s]="$(( ${CPU[$c:$s]:-0} + j1 - j0 ))"
      log "round $round $s $c: ${n:-0} requests"
    done
  done
done

# Every event written after the endpoint was added must reach the receiver: wait until it has
# them all (120 s at most) and say how long delivery trailed the load.
produced=0 trail=0
if [ -n "${PORT[webhook]:-}" ]; then
  produced=$(("$("$WORK/scimlet" events bench --data "$WORK/data-webhook" | wc -l)" - BEFORE_ENDPOINT))
  t0=$SECONDS
  while [ "$(curl -fsS "http://127.0.0.1:$RPORT/" | cut -d' ' -f1)" -lt "$produced" ] && [ $((SECONDS - t0)) -lt 120 ]; do
    sleep 0.5
  done
  trail=$((SECONDS - t0))
fi
HZ="$(getconf CLK_TCK)"
SECS=$((ROUNDS * DURATION))
echo "## Change events: write throughput ($(date -u '+%Y-%m-%d %H:%M UTC'))"
echo
echo "\`host/benches/events.sh --users $USERS --duration $DURATION --connections $CONNS --rounds $ROUNDS${BASELINE:+ --baseline $BASELINE}\`: $CONNS connections, ${SECS} s per scenario and configuration in $ROUNDS interleaved rounds, SQLite durable, loopback."
echo
echo "| scenario | configuration | req/s | server CPU µs/request | req/s vs ${CONFIGS[0]} |"
echo "|---|---|---|---|---|"
for s in patch_active post; do
  for c in "${CONFIGS[@]}"; do
    n="${REQS[$c:$s]}"
    awk -v n="$n" -v secs="$SECS" -v j="${CPU[$c:$s]}" -v hz="$HZ" -v ref="${REQS[${CONFIGS[0]}:$s]}" \
      -v s="$s" -v c="$c" 'BEGIN { printf "| %s | %s | %.0f | %.0f | %.2f |\n", s, c, n / secs, (n ? j / hz * 1e6 / n : 0), (ref ? n / ref : 0) }'
  done
done
[ -n "${PORT[webhook]:-}" ] || exit 0
read -r delivered badsig < <(curl -fsS "http://127.0.0.1:$RPORT/"; echo)
rcpu="$(awk -v j="$(proc_jiffies "$RPID")" -v hz="$HZ" -v n="$delivered" 'BEGIN { printf "%.0f", (n ? j / hz * 1e6 / n : 0) }')"
echo
echo "Webhook configuration: $produced events written after the endpoint was added, $delivered delivered with a valid signature and acknowledged ($badsig badly signed), the last ${trail} s after the load stopped; the receiver spent $rcpu µs CPU per event."
