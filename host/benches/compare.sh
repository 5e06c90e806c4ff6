#!/usr/bin/env bash
# scimlet against a peer SCIM server (scim2-server, the in-memory Python reference server), side by
# side in one run, on loopback only. Prints a Markdown report ready to paste into the README.
#
#   host/benches/compare.sh [--users N] [--duration SECS] [--connections C] [--threads T]
#                           [--spares S] [--peer-users N] [--peer-spares S]
#                           [--peer-max-seconds SECS] [--no-peer] [--no-boundary] [--out FILE]
#                           [--store postgres [--hosts 2] [--database-url URL]]
#                           [--pin] [--tenants N] [--tenant-users M] [--only "SCENARIO ..."]
#
#   --users N             users preloaded into scimlet, all members of one group "Big" (100000)
#   --duration SECS       length of each scenario (10)
#   --connections C       concurrent connections of the load generator (16)
#   --threads T           wrk threads (1; the machine has 2 cores and the server needs them)
#   --spares S            extra users in no group, for the three "add 1 member" scenarios (a
#                         third each; 18000 per second of --duration); every request adds a user
#                         that is not a member yet (the report says if they ran out)
#   --peer-users N        users preloaded into the peer (same as --users)
#   --peer-spares S       spares preloaded into the peer (600 per second of --duration)
#   --peer-max-seconds S  time budget of the peer's preload; it stops early and the report says
#                         how many users it holds (900)
#   --no-peer             measure scimlet alone
#   --no-boundary         skip `cargo bench -p scimlet --bench boundary`
#   --out FILE            also write the report to FILE (always: ~/.cache/scimlet-bench/last-report.md)
#   --store postgres      after SQLite, run the same scenarios on PostgreSQL with one host (the
#                         data imported by `scimlet import`, timed), in a fresh schema of the
#                         database dropped afterwards; the report compares them with SQLite
#   --hosts 2             with --store postgres: also with two hosts on that database, requests
#                         spread over both (two wrk processes, half the connections each)
#   --database-url URL    PostgreSQL to use (postgres://postgres@127.0.0.1:5432/test)
#   --pin                 servers on CPU 0 (`taskset -c 0`), wrk on CPU 1 (`taskset -c 1`), so that
#                         the load generator does not share the server's core
#   --only "S1 S2 ..."    run only these scenarios (names as in compare.lua: filter get tenants
#                         groups deep_page patch_active post add_member add_member_excl
#                         add_member_small; the floor always runs)
#   --tenants N           the many-tenants scenario: N more tenants (200; 0 skips it), created
#                         through the admin API, each with --tenant-users users (20); every request
#                         a GET /Users/{id} of a random tenant's user
#
# Every scimlet row reports the server's CPU time per request: utime + stime of the server
# process from /proc/PID/stat before and after the scenario's load, divided by the requests
# completed. On a shared machine that is the robust figure (other processes change req/s and
# latencies, hardly the CPU a request takes). The "HTTP floor" row is the same HTTP stack
# (host/benches/floor.rs: tokio, axum-server with the connection limits, axum) answering a fixed
# 200 from memory, under the requests of the GET /Users/{id} scenario; "× floor" divides each
# row's CPU per request by the floor's.
#
# Installs what it lacks: wrk (Debian package), and a Python venv with scim2-server from PyPI in
# ~/.cache/scimlet-bench (SCIMLET_BENCH_CACHE overrides). Data is preloaded with `scimlet import`
# when the binary has that command, else through the SCIM API by the `loader` bench
# (host/benches/loader.rs) on 32 connections. Load comes from wrk with host/benches/compare.lua.
set -euo pipefail

USERS=100000
DURATION=10
CONNS=16
THREADS=1
SPARES=""
PEER_USERS=""
PEER_SPARES=""
PEER_MAX_SECONDS=900
PEER=1
BOUNDARY=1
OUT=""
PG=0
HOSTS=1
PG_URL="postgres://postgres@127.0.0.1:5432/test"
PIN=0
TENANTS=200
TENANT_USERS=20
ONLY=""

ARGS="$*"
while [ $# -gt 0 ]; do
  case "$1" in
    --users) USERS="$2"; shift 2 ;;
    --duration) DURATION="$2"; shift 2 ;;
    --connections) CONNS="$2"; shift 2 ;;
    --threads) THREADS="$2"; shift 2 ;;
    --spares) SPARES="$2"; shift 2 ;;
    --peer-users) PEER_USERS="$2"; shift 2 ;;
    --peer-spares) PEER_SPARES="$2"; shift 2 ;;
    --peer-max-seconds) PEER_MAX_SECONDS="$2"; shift 2 ;;
    --no-peer) PEER=0; shift ;;
    --no-boundary) BOUNDARY=0; shift ;;
    --out) OUT="$2"; shift 2 ;;
    --store) [ "$2" = postgres ] || { echo "--store takes postgres (SQLite always runs)" >&2; exit 2; }
             PG=1; shift 2 ;;
    --hosts) HOSTS="$2"; shift 2 ;;
    --database-url) PG_URL="$2"; shift 2 ;;
    --pin) PIN=1; shift ;;
    --tenants) TENANTS="$2"; shift 2 ;;
    --tenant-users) TENANT_USERS="$2"; shift 2 ;;
    --only) ONLY="$2"; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
SPARES="${SPARES:-$((DURATION * 18000))}"
PEER_SPARES="${PEER_SPARES:-$((DURATION * 600))}"
SCENARIOS="filter get groups deep_page patch_active post add_member add_member_excl add_member_small"
PEER_USERS="${PEER_USERS:-$USERS}"
# scimlet alone: the many-tenants scenario, after the one-tenant GET it is compared with.
S_SCENARIOS="$SCENARIOS"
if [ "$TENANTS" -gt 0 ]; then S_SCENARIOS="${SCENARIOS/get /get tenants }"; fi
if [ -n "$ONLY" ]; then
  only() { # LIST: the scenarios of LIST named in --only, in LIST's order
    local s out=""
    for s in $1; do case " $ONLY " in *" $s "*) out="$out $s" ;; esac; done
    echo "${out# }"
  }
  SCENARIOS="$(only "$SCENARIOS")"
  S_SCENARIOS="$(only "$S_SCENARIOS")"
  case " $ONLY " in *" tenants "*) ;; *) TENANTS=0 ;; esac
fi
SERVER_PIN=()
WRK_PIN=()
if [ "$PIN" = 1 ]; then
  SERVER_PIN=(taskset -c 0)
  WRK_PIN=(taskset -c 1)
fi

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
CACHE="${SCIMLET_BENCH_CACHE:-$HOME/.cache/scimlet-bench}"
LUA="$HERE/compare.lua"
PEER_VERSION="0.8.3"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/scimlet-bench.XXXXXX")"
PIDS=()

log() { echo "==> $*" >&2; }

cleanup() {
  for pid in "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# --- tools ------------------------------------------------------------------------------------
if ! command -v wrk >/dev/null; then
  log "installing wrk (Debian package)"
  as_root apt-get update -qq >&2
  as_root apt-get install -y -qq wrk >&2
fi
PEER_BIN="$CACHE/venv/bin/scim2-server"
if [ "$PEER" = 1 ] && [ ! -x "$PEER_BIN" ]; then
  log "installing scim2-server $PEER_VERSION into $CACHE/venv"
  mkdir -p "$CACHE"
  python3 -m venv "$CACHE/venv"
  "$CACHE/venv/bin/pip" install -q "scim2-server==$PEER_VERSION" >&2
fi
mkdir -p "$CACHE"

log "building (cargo build --release -p scimlet; loader and floor benches)"
(cd "$ROOT" && cargo build --release -p scimlet >&2)
bench_exe() { # NAME: path of the bench binary, built
  (cd "$ROOT" && cargo bench -p scimlet --bench "$1" --no-run 2>&1 | tee /dev/stderr |
    sed -n 's/.*Executable .*(\(.*\)).*/\1/p' | tail -n1)
}
LOADER_EXE="$(bench_exe loader)"
FLOOR_EXE="$(bench_exe floor)"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
# Copies, so that a rebuild by someone else during the run changes nothing under it.
cp "$TARGET/release/scimlet" "$WORK/scimlet"
case "$LOADER_EXE" in /*) ;; *) LOADER_EXE="$ROOT/$LOADER_EXE" ;; esac
cp "$LOADER_EXE" "$WORK/loader"
case "$FLOOR_EXE" in /*) ;; *) FLOOR_EXE="$ROOT/$FLOOR_EXE" ;; esac
cp "$FLOOR_EXE" "$WORK/floor"
BIN="$WORK/scimlet"
loader() { "$WORK/loader" "$@"; }

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_http() { # URL: until it answers, 60 s at most
  for _ in $(seq 600); do
    if curl -fsS -o /dev/null "$1" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "server at $1 did not come up" >&2
  return 1
}

since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }

declare -A RES

# run_scenarios NAME PORT BASE_PATH TOKEN DIR DEEP_START
# Non-2xx statuses in the server's log after line FROM: "500×32, 404×1" (scimlet logs `status=N`
# per request, the peer's wsgiref `"METHOD PATH HTTP/1.0" N SIZE`).
statuses() { # LOGFILE FROM
  tail -n +"$(($2 + 1))" "$1" | sed 's/\x1b\[[0-9;]*m//g' |
    sed -n -e 's/.* status=\([0-9]\{3\}\).*/\1/p' -e 's/.*HTTP\/1\.[01]" \([0-9]\{3\}\) .*/\1/p' |
    awk '$1 !~ /^2/ { n[$1]++ } END { for (s in n) printf "%s%s×%d", (k++ ? ", " : ""), s, n[s] }'
}

# Distinct ERROR and WARN messages in the server's log after line FROM, most frequent first.
problems() { # LOGFILE FROM
  tail -n +"$(($2 + 1))" "$1" | sed 's/\x1b\[[0-9;]*m//g' | { grep -E ' (ERROR|WARN) ' || true; } |
    sed -E 's/^[^ ]+ +//; s/ (request_id|tenant)=[^ ]*//g' | sort | uniq -c | sort -rn | head -3 |
    awk '{ n = $1; $1 = ""; sub(/^ /, ""); printf "%s`%s` ×%d", (k++ ? "; " : ""), $0, n }'
}

declare -A STATUS PROBLEMS

# wrk_run SCENARIO WHO PORT BASE TOKEN DIR DEEP FROM SLICE CONNECTIONS SECONDS TIMEOUT -> RESULT line
# (wrk's own CPU seconds, user + system, go to $WORK/wrk.cpu)
wrk_run() {
  if [ -n "${PORT2:-}" ]; then wrk_run2 "$@"; return; fi
  local line TIMEFORMAT='%U %S'
  { time SCENARIO="$1" BENCH_DIR="$6" BASE_PATH="$4" BENCH_TOKEN="$5" RUN_TAG="$2$$$RANDOM" \
    DEEP_START="$7" WRK_THREADS="$THREADS" SPARE_FROM="$8" SPARE_COUNT="$9" \
    "${WRK_PIN[@]}" wrk -t"$THREADS" -c"${10}" -d"${11}s" --timeout "${12}s" -s "$LUA" "http://127.0.0.1:$3" \
    >"$WORK/wrk.out" 2>&1; } 2>"$WORK/wrk.time" || true
  awk '{ print $1 + $2 }' "$WORK/wrk.time" >"$WORK/wrk.cpu"
  cat "$WORK/wrk.out" >>"$WORK/wrk-$2.log"
  line="$(grep '^RESULT' "$WORK/wrk.out" || true)"
  echo "${line:-RESULT requests=0 duration_us=${11}000000 p50_us=0 p99_us=0 non2xx=0 connect=0 read=0 write=0 timeout=0 wraps=0}"
}

# wrk_run with the load spread over two hosts (ports $3 and $PORT2): two wrk processes at once,
# half the connections and half the spare slice each; requests and errors are summed, and the
# latency percentiles are the worse of the two processes'.
wrk_run2() {
  local half=$((${10} / 2)) part=$(($9 / 2)) w1 w2 TIMEFORMAT='%U %S'
  { time {
    SCENARIO="$1" BENCH_DIR="$6" BASE_PATH="$4" BENCH_TOKEN="$5" RUN_TAG="$2a$$$RANDOM" \
      DEEP_START="$7" WRK_THREADS="$THREADS" SPARE_FROM="$8" SPARE_COUNT="$part" \
      "${WRK_PIN[@]}" wrk -t"$THREADS" -c"$half" -d"${11}s" --timeout "${12}s" -s "$LUA" "http://127.0.0.1:$3" \
      >"$WORK/wrk.out" 2>&1 &
    w1=$!
    SCENARIO="$1" BENCH_DIR="$6" BASE_PATH="$4" BENCH_TOKEN="$5" RUN_TAG="$2b$$$RANDOM" \
      DEEP_START="$7" WRK_THREADS="$THREADS" SPARE_FROM="$(($8 + part))" SPARE_COUNT="$part" \
      "${WRK_PIN[@]}" wrk -t"$THREADS" -c"$((${10} - half))" -d"${11}s" --timeout "${12}s" -s "$LUA" \
      "http://127.0.0.1:$PORT2" >"$WORK/wrk2.out" 2>&1 &
    w2=$!
    wait "$w1" "$w2"; }; } 2>"$WORK/wrk.time" || true
  awk '{ print $1 + $2 }' "$WORK/wrk.time" >"$WORK/wrk.cpu"
  cat "$WORK/wrk.out" "$WORK/wrk2.out" >>"$WORK/wrk-$2.log"
  { grep -h '^RESULT' "$WORK/wrk.out" "$WORK/wrk2.out" || true; } | awk '
    { for (i = 2; i <= NF; i++) { split($i, kv, "="); k = kv[1]; v = kv[2] + 0
        if (k ~ /^(duration_us|p50_us|p99_us)$/) { if (v > r[k]) r[k] = v } else r[k] += v } ; n++ }
    END { if (n < 2) r["requests"] = 0
      printf "RESULT requests=%d duration_us=%d p50_us=%d p99_us=%d non2xx=%d connect=%d read=%d write=%d timeout=%d wraps=%d\n",
        r["requests"], r["duration_us"], r["p50_us"], r["p99_us"], r["non2xx"], r["connect"], r["read"], r["write"], r["timeout"], r["wraps"] }'
}

# drain PORT BASE TOKEN DIR: waits (300 s at most) until the server answers GET /Users/{id} within
# 2 s, so that requests a scenario left queued do not slow the next one; prints the seconds waited.
drain() {
  local url="http://127.0.0.1:$1$2/Users/$(head -n1 "$4/members.tsv" | cut -f1)" t0=$SECONDS
  local auth=(); [ -n "$3" ] && auth=(-H "Authorization: Bearer $3")
  while [ $((SECONDS - t0)) -lt 300 ]; do
    if curl -fsS -o /dev/null --max-time 2 "${auth[@]}" "$url" 2>/dev/null; then break; fi
  done
  echo $((SECONDS - t0))
}

declare -A RSS DRAIN SOLO OTHERS CPU

# Busy CPU jiffies of the whole machine, and of one process (all its threads).
busy_jiffies() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat; }
proc_jiffies() { sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }

# run_scenarios NAME PORT BASE_PATH TOKEN DIR DEEP_START SERVER_LOG SERVER_PID [SCENARIOS]
run_scenarios() {
  local who="$1" port="$2" base="$3" token="$4" dir="$5" deep="$6" slog="$7" pid="$8" s line from mark
  local list="${9:-$SCENARIOS}"
  local slice=$(($(wc -l <"$dir/spares.txt") / 3))
  for s in $list; do
    case "$s" in
      add_member) from=0 ;;
      add_member_excl) from=$slice ;;
      add_member_small) from=$((2 * slice)) ;;
      *) from=0 ;;
    esac
    log "$who: $s (${DURATION}s, $CONNS connections)"
    mark="$(wc -l <"$slog")"
    local b0 p0 t0 p1
    b0="$(busy_jiffies)"; p0="$(proc_jiffies "$pid")"; t0="$(date +%s.%N)"
    wrk_run "$s" "$who" "$port" "$base" "$token" "$dir" "$deep" "$from" "$slice" "$CONNS" "$DURATION" 10 >"$WORK/line"
    p1="$(proc_jiffies "$pid")"
    line="$(cat "$WORK/line")"
    # The server's CPU time (all its threads, user + system) per request completed, in µs.
    CPU["$who:$s"]="$(awk -v p="$((p1 - p0))" -v n="$(field "$line" requests)" -v hz="$(getconf CLK_TCK)" \
      'BEGIN { if (n > 0) printf "%.0f", p / hz * 1e6 / n }')"
    # Share of both cores used by processes other than this server and wrk during the scenario.
    OTHERS["$who:$s"]="$(awk -v b="$(($(busy_jiffies) - b0))" -v p="$((p1 - p0))" \
      -v w="$(cat "$WORK/wrk.cpu")" -v t0="$t0" -v t1="$(date +%s.%N)" -v hz="$(getconf CLK_TCK)" \
      -v n="$(nproc)" 'BEGIN { x = (b - p - w * hz) / ((t1 - t0) * hz * n) * 100; printf "%.0f", (x < 0 ? 0 : x) }')"
    log "  $line (server CPU ${CPU[$who:$s]:-?} µs/request; others: ${OTHERS[$who:$s]}% CPU)"
    DRAIN["$who:$s"]="$(drain "$port" "$base" "$token" "$dir")"
    if [ "$(field "$line" requests)" = 0 ]; then
      # Not one answer in time under load: one connection, longer, to say how long one takes.
      log "  no request completed; measuring one connection for $((DURATION * 3))s"
      SOLO["$who:$s"]="$(wrk_run "$s" "$who" "$port" "$base" "$token" "$dir" "$deep" \
        $((from + slice / 2)) $((slice / 2)) 1 $((DURATION * 3)) 120)"
      log "  ${SOLO[$who:$s]}"
      DRAIN["$who:$s"]=$((DRAIN[$who:$s] + $(drain "$port" "$base" "$token" "$dir")))
    fi
    [ "${DRAIN[$who:$s]}" -gt 1 ] && log "  the server was busy ${DRAIN[$who:$s]}s after the scenario"
    RES["$who:$s"]="$line"
    RSS["$who:$s"]="$(($(status_kb "$pid" VmRSS) / 1024))/$(($(status_kb "$pid" VmHWM) / 1024))"
    sleep 1
    STATUS["$who:$s"]="$(statuses "$slog" "$mark")"
    PROBLEMS["$who:$s"]="$(problems "$slog" "$mark")"
    if [ -n "${STATUS[$who:$s]}" ]; then log "  non-2xx: ${STATUS[$who:$s]} ${PROBLEMS[$who:$s]}"; fi
  done
}

field() { # LINE KEY
  sed -n "s/.* $2=\([0-9]*\).*/\1/p" <<<" $1"
}

status_kb() { # PID KEY
  awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"
}

STARTED_AT="$(date -u '+%Y-%m-%d %H:%M UTC')"
LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"

# --- scimlet ------------------------------------------------------------------------------------
DATA="$WORK/scimlet-data"
S_DIR="$WORK/scimlet-ids"
mkdir -p "$S_DIR"
TOKEN="$("$BIN" tenant create bench --data "$DATA" 2>/dev/null | tail -n1)"
PRELOAD_HOW="the SCIM API (loader bench, 32 connections)"
IMPORTED=0
T0=$(date +%s.%N)
if "$BIN" --help 2>/dev/null | grep -qE '^\s+import\b'; then
  log "scimlet: generating $USERS users + $SPARES spares for scimlet import"
  {
    echo '{"type":"team","name":"Big"}'
    awk -v n="$USERS" 'BEGIN { for (i = 0; i < n; i++) printf "{\"type\":\"user\",\"userName\":\"user-%06d@bench.example\",\"givenName\":\"Bench\",\"familyName\":\"User %d\",\"email\":\"user-%06d@bench.example\",\"teams\":[\"Big\"]}\n", i, i, i }'
    awk -v n="$SPARES" 'BEGIN { for (i = 0; i < n; i++) printf "{\"type\":\"user\",\"userName\":\"spare-%06d@bench.example\",\"givenName\":\"Bench\",\"familyName\":\"Spare %d\",\"email\":\"spare-%06d@bench.example\"}\n", i, i, i }'
  } >"$WORK/import.jsonl"
  if "$BIN" import bench "$WORK/import.jsonl" --data "$DATA" >&2; then
    IMPORTED=1
    PRELOAD_HOW="\`scimlet import\`"
  else
    log "scimlet import failed; falling back to the SCIM API on a fresh data dir"
    rm -rf "$DATA"
    TOKEN="$("$BIN" tenant create bench --data "$DATA" 2>/dev/null | tail -n1)"
    T0=$(date +%s.%N)
  fi
fi
PORT="$(free_port)"
ADMIN=()
if [ "$TENANTS" -gt 0 ]; then
  APORT="$(free_port)"
  ADMIN_TOKEN="bench-admin-$$-$RANDOM-$RANDOM"
  ADMIN=(--admin-listen "127.0.0.1:$APORT")
fi
# (SCIMLET_ADMIN_TOKEN only with the admin listener: an empty one is refused.)
NO_COLOR=1 env ${ADMIN_TOKEN:+SCIMLET_ADMIN_TOKEN="$ADMIN_TOKEN"} "${SERVER_PIN[@]}" "$BIN" serve --listen "127.0.0.1:$PORT" \
  --data "$DATA" "${ADMIN[@]}" >"$WORK/scimlet.log" 2>&1 &
SPID=$!
PIDS+=("$SPID")
wait_http "http://127.0.0.1:$PORT/healthz"
log "scimlet serving on 127.0.0.1:$PORT (pid $SPID)"
if [ "$IMPORTED" = 1 ]; then
  loader dump --base "http://127.0.0.1:$PORT/scim/v2" --token "$TOKEN" --out "$S_DIR"
else
  log "scimlet: preloading $USERS users + $SPARES spares through the API"
  loader preload --base "http://127.0.0.1:$PORT/scim/v2" --token "$TOKEN" --out "$S_DIR" \
    --users "$USERS" --spares "$SPARES" --concurrency 32
fi
PRELOAD_S="$(since "$T0")"
if [ "$TENANTS" -gt 0 ]; then
  log "scimlet: $TENANTS more tenants of $TENANT_USERS users (admin API, then SCIM API)"
  T2=$(date +%s.%N)
  loader tenants --base "http://127.0.0.1:$PORT/scim/v2" --admin "http://127.0.0.1:$APORT" \
    --admin-token "$ADMIN_TOKEN" --out "$S_DIR" --tenants "$TENANTS" --users "$TENANT_USERS" \
    --concurrency 16
  TENANTS_S="$(since "$T2")"
fi
S_LOADED="$(cat "$S_DIR/loaded.txt")"
RSS_AFTER_LOAD="$(status_kb "$SPID" VmRSS)"
# Size of the preloaded data alone (the run adds audit records of every write on top).
LOAD_DB_BYTES="$(find "$DATA" -maxdepth 1 -name 'scimlet.db*' -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }')"
LOAD_USERS="$((S_LOADED + $(wc -l <"$S_DIR/spares.txt")))"
run_scenarios scimlet "$PORT" /scim/v2 "$TOKEN" "$S_DIR" "$((S_LOADED + $(wc -l <"$S_DIR/spares.txt") - 99))" \
  "$WORK/scimlet.log" "$SPID" "$S_SCENARIOS"
S_TOTAL="$(curl -fsS -H "Authorization: Bearer $TOKEN" \
  "http://127.0.0.1:$PORT/scim/v2/Users?count=0" | python3 -c 'import json,sys; print(json.load(sys.stdin)["totalResults"])')"
S_HWM="$(status_kb "$SPID" VmHWM)"
S_RSS="$(status_kb "$SPID" VmRSS)"
kill "$SPID"
wait "$SPID" 2>/dev/null || true
DB_BYTES="$(find "$DATA" -maxdepth 1 -name 'scimlet.db*' -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }')"
CACHE_BYTES="$(du -sb "$DATA/cache" 2>/dev/null | cut -f1)"
# The access log (one info line per request, as shipped) goes to a file; keep its problems.
grep -E 'ERROR|WARN|panicked' "$WORK/scimlet.log" | head -200 >"$CACHE/last-scimlet-problems.log" || true
if [ -s "$CACHE/last-scimlet-problems.log" ]; then
  log "scimlet logged warnings or errors; see $CACHE/last-scimlet-problems.log"
fi

# --- HTTP floor ---------------------------------------------------------------------------------
# The same HTTP stack answering a fixed 200 from memory (host/benches/floor.rs), alone on the
# machine like scimlet was, under the requests of the GET /Users/{id} scenario.
FPORT="$(free_port)"
"${SERVER_PIN[@]}" "$WORK/floor" --listen "127.0.0.1:$FPORT" >"$WORK/floor.log" 2>&1 &
FPID=$!
PIDS+=("$FPID")
wait_http "http://127.0.0.1:$FPORT/healthz"
run_scenarios floor "$FPORT" /scim/v2 "$TOKEN" "$S_DIR" 1 "$WORK/floor.log" "$FPID" floor
kill "$FPID"
wait "$FPID" 2>/dev/null || true

# --- peer ---------------------------------------------------------------------------------------
P_LOADED=0
if [ "$PEER" = 1 ]; then
  P_DIR="$WORK/peer-ids"
  PPORT="$(free_port)"
  "${SERVER_PIN[@]}" "$PEER_BIN" --hostname 127.0.0.1 --port "$PPORT" >"$WORK/peer.log" 2>&1 &
  PPID_=$!
  PIDS+=("$PPID_")
  wait_http "http://127.0.0.1:$PPORT/v2/ServiceProviderConfig"
  log "scim2-server serving on 127.0.0.1:$PPORT (pid $PPID_); preloading $PEER_USERS users (budget ${PEER_MAX_SECONDS}s)"
  T1=$(date +%s.%N)
  loader preload --base "http://127.0.0.1:$PPORT/v2" --out "$P_DIR" --users "$PEER_USERS" \
    --spares "$PEER_SPARES" --concurrency 32 --max-seconds "$PEER_MAX_SECONDS" --group-in-one-post
  P_PRELOAD_S="$(since "$T1")"
  P_LOADED="$(cat "$P_DIR/loaded.txt")"
  run_scenarios peer "$PPORT" /v2 "" "$P_DIR" "$((P_LOADED + $(wc -l <"$P_DIR/spares.txt") - 99))" \
    "$WORK/peer.log" "$PPID_"
  P_HWM="$(status_kb "$PPID_" VmHWM)"
  kill "$PPID_"
  wait "$PPID_" 2>/dev/null || true
fi

# --- PostgreSQL ---------------------------------------------------------------------------------
# pg_run WHO HOSTS: the same data imported into a fresh schema (timed), HOSTS hosts on it, the
# same scenarios. Sets PG_IMPORT_S[WHO] and PG_LOADED[WHO].
declare -A PG_IMPORT_S PG_LOADED
PG_SCHEMAS=()
pg_drop_schemas() {
  for schema in "${PG_SCHEMAS[@]}"; do
    psql -q "$PG_URL" -c "DROP SCHEMA IF EXISTS $schema CASCADE" >/dev/null 2>&1 || true
  done
}
pg_run() {
  local who="$1" hosts="$2" schema="scimlet_bench_$$_$RANDOM" url token port port2="" pid pid2 t0 dir
  psql -q -v ON_ERROR_STOP=1 "$PG_URL" -c "CREATE SCHEMA $schema" >/dev/null
  PG_SCHEMAS+=("$schema")
  url="$PG_URL?options=-csearch_path%3D$schema"
  case "$PG_URL" in *\?*) url="$PG_URL&options=-csearch_path%3D$schema" ;; esac
  local store=(--store postgres --database-url "$url")
  token="$("$BIN" tenant create bench "${store[@]}" --data "$DATA" 2>/dev/null | tail -n1)"
  log "$who: scimlet import of $USERS users + $SPARES spares into PostgreSQL"
  t0=$(date +%s.%N)
  "$BIN" import bench "$WORK/import.jsonl" "${store[@]}" --data "$DATA" >&2
  PG_IMPORT_S[$who]="$(since "$t0")"
  log "$who: imported in ${PG_IMPORT_S[$who]} s"
  port="$(free_port)"
  NO_COLOR=1 "${SERVER_PIN[@]}" "$BIN" serve --listen "127.0.0.1:$port" --data "$DATA" "${store[@]}" >"$WORK/$who.log" 2>&1 &
  pid=$!
  PIDS+=("$pid")
  wait_http "http://127.0.0.1:$port/healthz"
  if [ "$hosts" = 2 ]; then
    port2="$(free_port)"
    NO_COLOR=1 "${SERVER_PIN[@]}" "$BIN" serve --listen "127.0.0.1:$port2" --data "$DATA" "${store[@]}" >"$WORK/$who-2.log" 2>&1 &
    pid2=$!
    PIDS+=("$pid2")
    wait_http "http://127.0.0.1:$port2/healthz"
  fi
  dir="$WORK/$who-ids"
  mkdir -p "$dir"
  loader dump --base "http://127.0.0.1:$port/scim/v2" --token "$token" --out "$dir"
  PG_LOADED[$who]="$(cat "$dir/loaded.txt")"
  PORT2="$port2" run_scenarios "$who" "$port" /scim/v2 "$token" "$dir" \
    "$((PG_LOADED[$who] + $(wc -l <"$dir/spares.txt") - 99))" "$WORK/$who.log" "$pid"
  kill "$pid" ${pid2:+"$pid2"}
  wait "$pid" ${pid2:+"$pid2"} 2>/dev/null || true
  grep -hE 'ERROR|WARN|panicked' "$WORK/$who.log" ${pid2:+"$WORK/$who-2.log"} | head -200 \
    >"$CACHE/last-$who-problems.log" || true
}
if [ "$PG" = 1 ]; then
  if [ "$IMPORTED" != 1 ]; then echo "--store postgres needs scimlet import" >&2; exit 1; fi
  trap 'pg_drop_schemas; cleanup' EXIT
  pg_run pg1 1
  if [ "$HOSTS" = 2 ]; then pg_run pg2 2; fi
fi

# --- boundary bench -----------------------------------------------------------------------------
if [ "$BOUNDARY" = 1 ]; then
  log "cargo bench -p scimlet --bench boundary"
  (cd "$ROOT" && cargo bench -q -p scimlet --bench boundary 2>&1) | tee "$WORK/boundary.txt" >&2
fi
LOAD_AFTER="$(cut -d' ' -f1-3 /proc/loadavg)"

# --- report -------------------------------------------------------------------------------------
ms() { awk -v u="$1" 'BEGIN { printf "%.2f", u / 1000 }'; }
rps() {
  awk -v r="$1" -v d="$2" 'BEGIN { x = r / (d / 1e6); printf (x >= 100 ? "%.0f" : x >= 1 ? "%.1f" : "%.2f"), x }'
}
cell() { # WHO:SCENARIO -> "req/s | p50 | p99"
  local line="${RES[$1]}" solo="${SOLO[$1]:-}" r err
  r="$(rps "$(field "$line" requests)" "$(field "$line" duration_us)")"
  err=$(($(field "$line" non2xx) + $(field "$line" timeout) + $(field "$line" connect) + $(field "$line" read) + $(field "$line" write)))
  if [ "$err" -gt 0 ]; then r="$r ⚠ $err errors"; fi
  if [ -n "$solo" ]; then
    if [ "$(field "$solo" requests)" -gt 0 ]; then
      printf '0 ‡ (alone: %s) | %s ‡ | %s ‡' "$(rps "$(field "$solo" requests)" "$(field "$solo" duration_us)")" \
        "$(ms "$(field "$solo" p50_us)")" "$(ms "$(field "$solo" p99_us)")"
    else
      printf '0 ‡ | > %s000 ‡ | — ' "$((DURATION * 3))"
    fi
    return
  fi
  printf '%s | %s | %s' "$r" "$(ms "$(field "$line" p50_us)")" "$(ms "$(field "$line" p99_us)")"
}
rate() { # WHO:SCENARIO -> req/s, from the single-connection run when none completed under load
  local line="${RES[$1]}"
  if [ "$(field "$line" requests)" = 0 ] && [ -n "${SOLO[$1]:-}" ]; then line="${SOLO[$1]}"; fi
  awk -v r="$(field "$line" requests)" -v d="$(field "$line" duration_us)" 'BEGIN { print r / (d / 1e6) }'
}
label() {
  case "$1" in
    filter) echo 'GET /Users?filter=userName eq "…" (random user)' ;;
    get) echo 'GET /Users/{id} (random user)' ;;
    tenants) echo "GET /Users/{id}, a random tenant of $TENANTS ($TENANT_USERS users each) per request" ;;
    floor) echo 'HTTP floor: the same HTTP stack answering a fixed 200 from memory' ;;
    groups) echo 'GET /Groups?excludedAttributes=members' ;;
    deep_page) echo 'GET /Users?startIndex=N-99&count=100 (last page)' ;;
    patch_active) echo 'PATCH /Users/{id} replace active=false (random user)' ;;
    post) echo 'POST /Users (unique userName)' ;;
    add_member) echo 'PATCH /Groups/{big} add 1 new member' ;;
    add_member_excl) echo 'same, with ?excludedAttributes=members' ;;
    add_member_small) echo 'PATCH /Groups/{small} add 1 new member (group starts empty)' ;;
  esac
}
MB() { awk -v b="$1" 'BEGIN { printf "%.1f MB", b / 1e6 }'; }
cpu() { # WHO:SCENARIO -> "µs" or "—"
  echo "${CPU[$1]:-—}"
}
xfloor() { # WHO:SCENARIO -> CPU per request over the floor's
  awk -v a="${CPU[$1]:-}" -v f="${CPU[floor:floor]:-}" \
    'BEGIN { if (a == "" || f == "" || f == 0) print "—"; else printf (a / f >= 10 ? "%.0f×" : "%.1f×"), a / f }'
}

{
  echo "Command: \`host/benches/compare.sh${ARGS:+ $ARGS}\` ($STARTED_AT). Load: wrk, $CONNS connections,"
  echo "$THREADS thread, ${DURATION} s per scenario, loopback; a random existing user per request where it says so."
  echo
  printf -- '- scimlet: %s users in group "Big" + %s users in no group, SQLite (WAL, durable commits),\n' \
    "$S_LOADED" "$(wc -l <"$S_DIR/spares.txt")"
  printf '  preloaded through %s in %.0f s.\n' "$PRELOAD_HOW" "$PRELOAD_S"
  if [ "$PEER" = 1 ]; then
    printf -- '- scim2-server %s (its own CLI: in-memory storage, wsgiref thread per connection, HTTP/1.0):\n' "$PEER_VERSION"
    printf '  %s users in group "Big" + %s in no group, preloaded through its API (32 connections) in %.0f s' \
      "$P_LOADED" "$(wc -l <"$P_DIR/spares.txt")" "$P_PRELOAD_S"
    if [ "$P_LOADED" -lt "$PEER_USERS" ]; then
      printf ' (**fewer users than scimlet**: the %s s preload budget ran out after %s of %s)' \
        "$PEER_MAX_SECONDS" "$P_LOADED" "$PEER_USERS"
    elif [ "$P_LOADED" -lt "$S_LOADED" ]; then
      printf ' (**fewer users than scimlet**, by --peer-users)'
    fi
    echo "."
  fi
  echo
  if [ "$PEER" = 1 ]; then
    echo "| scenario | scimlet req/s | p50 ms | p99 ms | CPU µs/req | × floor | scim2-server req/s | p50 ms | p99 ms | CPU µs/req | req/s ratio |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    echo "| $(label floor) | $(cell floor:floor) | $(cpu floor:floor) | 1.0× | — | — | — | — | — |"
  else
    echo "| scenario | scimlet req/s | p50 ms | p99 ms | CPU µs/req | × floor |"
    echo "|---|---:|---:|---:|---:|---:|"
    echo "| $(label floor) | $(cell floor:floor) | $(cpu floor:floor) | 1.0× |"
  fi
  for s in $S_SCENARIOS; do
    if [ "$PEER" = 1 ] && [ -n "${RES[peer:$s]:-}" ]; then
      ratio="$(awk -v a="$(rate "scimlet:$s")" -v b="$(rate "peer:$s")" \
        'BEGIN { if (b == 0) print "∞"; else printf (a / b >= 10 ? "%.0f×" : "%.1f×"), a / b }')"
      echo "| $(label "$s") | $(cell "scimlet:$s") | $(cpu "scimlet:$s") | $(xfloor "scimlet:$s") | $(cell "peer:$s") | $(cpu "peer:$s") | $ratio |"
    elif [ "$PEER" = 1 ]; then
      echo "| $(label "$s") | $(cell "scimlet:$s") | $(cpu "scimlet:$s") | $(xfloor "scimlet:$s") | — | — | — | — | — |"
    else
      echo "| $(label "$s") | $(cell "scimlet:$s") | $(cpu "scimlet:$s") | $(xfloor "scimlet:$s") |"
    fi
  done
  echo
  printf -- '- CPU µs/req: the server process'"'"'s CPU time (user + system, all threads, from /proc/PID/stat) over the scenario divided by the requests completed%s.\n' \
    "$([ "$PIN" = 1 ] && echo "; servers pinned to CPU 0 (\`taskset -c 0\`), wrk to CPU 1" || echo "; not pinned (--pin pins the server to CPU 0 and wrk to CPU 1)")"
  if [ "$TENANTS" -gt 0 ]; then
    printf -- '- Many tenants: %s tenants of %s users created through the admin API and the SCIM API in %.0f s, besides the one-tenant data.\n' \
      "$TENANTS" "$TENANT_USERS" "$TENANTS_S"
  fi
  echo
  for s in floor $S_SCENARIOS; do
    for who in floor scimlet peer; do
      if [ -n "${STATUS[$who:$s]:-}" ]; then
        name="$who"; [ "$who" = peer ] && name=scim2-server
        echo "- ⚠ $name, $(label "$s"): non-2xx responses ${STATUS[$who:$s]}${PROBLEMS[$who:$s]:+; logged: ${PROBLEMS[$who:$s]}}."
      fi
    done
  done
  if [ -n "${!SOLO[*]}" ]; then
    echo "- ‡ No request completed within the ${DURATION} s under load (wrk timeout 10 s); the cells show one"
    echo "  connection for $((DURATION * 3)) s instead (timeout 120 s), and the ratio uses that rate."
  fi
  for s in $SCENARIOS; do
    for who in scimlet peer; do
      if [ "${DRAIN[$who:$s]:-0}" -gt 1 ]; then
        name="$who"; [ "$who" = peer ] && name=scim2-server
        echo "- $name was still busy ${DRAIN[$who:$s]} s after \"$(label "$s")\" ended (requests left queued); the next scenario started after."
      fi
    done
  done
  for who in scimlet peer; do
    w=0
    for s in add_member add_member_excl add_member_small; do
      w=$((w + $(field "${RES[$who:$s]:-}" wraps || true) + 0))
    done
    if [ "$w" -gt 0 ]; then
      echo "- Note: $who ran out of spare users; $w member adds re-added an existing member."
    fi
  done
  if [ "$PG" = 1 ]; then
    echo
    echo "Same scenarios and data on PostgreSQL 15 (same machine, loopback; durable commits on both):"
    echo
    if [ "$HOSTS" = 2 ]; then
      echo "| scenario | SQLite req/s | PostgreSQL 1 host req/s | p50 ms | p99 ms | vs SQLite | PostgreSQL 2 hosts req/s | p50 ms | p99 ms | vs SQLite |"
      echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    else
      echo "| scenario | SQLite req/s | PostgreSQL 1 host req/s | p50 ms | p99 ms | vs SQLite |"
      echo "|---|---:|---:|---:|---:|---:|"
    fi
    for s in $SCENARIOS; do
      row="| $(label "$s") | $(rps "$(field "${RES[scimlet:$s]}" requests)" "$(field "${RES[scimlet:$s]}" duration_us)")"
      for who in pg1 pg2; do
        [ "$who" = pg2 ] && [ "$HOSTS" != 2 ] && continue
        pct="$(awk -v a="$(rate "$who:$s")" -v b="$(rate "scimlet:$s")" 'BEGIN { if (b == 0) print "—"; else printf "%.0f %%", a / b * 100 }')"
        row="$row | $(cell "$who:$s") | $pct"
      done
      echo "$row |"
    done
    echo
    for who in pg1 pg2; do
      [ -n "${PG_IMPORT_S[$who]:-}" ] || continue
      n=$((USERS + SPARES))
      echo "- \`scimlet import\` into PostgreSQL ($who): $n users ($USERS in group \"Big\") in ${PG_IMPORT_S[$who]} s = **$(awk -v n="$n" -v t="${PG_IMPORT_S[$who]}" 'BEGIN { printf "%.0f", n / t }') users/s**."
    done
    for s in $SCENARIOS; do
      for who in pg1 pg2; do
        if [ -n "${STATUS[$who:$s]:-}" ]; then
          echo "- ⚠ $who, $(label "$s"): non-2xx responses ${STATUS[$who:$s]}${PROBLEMS[$who:$s]:+; logged: ${PROBLEMS[$who:$s]}}."
        fi
      done
    done
    echo
  fi
  echo "- scimlet host peak RSS (VmHWM): $((S_HWM / 1024)) MB (RSS after preload $((RSS_AFTER_LOAD / 1024)) MB, at the end $((S_RSS / 1024)) MB)."
  printf -- '- scimlet RSS / peak RSS after each scenario (MB):'
  for s in $S_SCENARIOS; do printf ' %s %s;' "$s" "${RSS[scimlet:$s]}"; done
  echo
  if [ "$PEER" = 1 ]; then
    echo "- scim2-server peak RSS (VmHWM): $((P_HWM / 1024)) MB with $P_LOADED users."
  fi
  per=$(awk -v b="$LOAD_DB_BYTES" -v n="$LOAD_USERS" 'BEGIN { printf "%.0f", b * 100000 / n }')
  echo "- SQLite data after the preload (scimlet.db and its WAL): $(MB "$LOAD_DB_BYTES") for $LOAD_USERS users = **$(MB "$per") per 100 000 users** (with group memberships and indexes); after the run, with $S_TOTAL users and the audit records of every write, $(MB "$DB_BYTES"); the compiled-component cache beside it is $(MB "${CACHE_BYTES:-0}")."
  if [ "$BOUNDARY" = 1 ]; then
    echo
    echo "\`cargo bench -p scimlet --bench boundary\` (same guest code through wasmtime vs linked natively, memory store, median µs per request; *wasm* reuses a warm instance of the tenant as \`serve\` does, *fresh* instantiates per request):"
    echo
    echo "| request | wasm µs | fresh µs | native µs | wasm/native | fresh/native |"
    echo "|---|---:|---:|---:|---:|---:|"
    awk 'NF >= 6 && $NF ~ /^[0-9.]+$/ && $(NF-1) ~ /^[0-9.]+$/ && $(NF-4) ~ /^[0-9.]+$/ {
           name = $1; for (i = 2; i <= NF - 5; i++) name = name " " $i
           printf "| %s | %s | %s | %s | %s | %s |\n", name, $(NF-4), $(NF-3), $(NF-2), $(NF-1), $NF }' "$WORK/boundary.txt"
  fi
  echo
  echo "Machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')), $(free -h | awk '/^Mem:/ { print $2 }') RAM; load average before $LOAD_BEFORE, after $LOAD_AFTER."
  printf 'CPU used by other processes (not scimlet, not wrk) during each scimlet scenario, %% of both cores:'
  for s in $S_SCENARIOS; do printf ' %s' "${OTHERS[scimlet:$s]}"; done
  echo "."
} >"$WORK/report.md"

cp "$WORK/report.md" "$CACHE/last-report.md"
cp "$WORK"/wrk-*.log "$CACHE/" 2>/dev/null || true
[ -n "$OUT" ] && cp "$WORK/report.md" "$OUT"
cat "$WORK/report.md"
