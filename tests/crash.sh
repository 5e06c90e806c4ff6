#!/usr/bin/env bash
# Crash test: kill -9 the server in the middle of concurrent writes, restart it on the same data
# dir, and verify that every request that was answered 2xx is there, nothing answered 4xx is,
# and `scimlet check` finds the store consistent.
#
# Usage: tests/crash.sh [CREATES]   (default 200; uses the debug binary, so build it first)
# Loopback only; every loop is bounded.
set -euo pipefail
cd "$(dirname "$0")/.."

target="${CARGO_TARGET_DIR:-target}"
bin="$target/debug/scimlet"
creates="${1:-200}"
workers=4
[ -x "$bin" ] || { echo "crash test: $bin is missing (cargo build -p scimlet)" >&2; exit 1; }
# The end-to-end tests' compiled-component cache: a warm start instead of a compile.
cache="$target/tmp/cwasm-cache"
mkdir -p "$cache"

work="$(mktemp -d)"
data="$work/data"
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then
    kill -9 "$server_pid" 2>/dev/null || true
    { wait "$server_pid"; } 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

fail() {
  echo "crash test FAILED: $*" >&2
  echo "--- server stderr (last lines)" >&2
  tail -n 5 "$work"/server-*.err >&2 || true
  exit 1
}

# Starts the server; sets server_pid and base (and token on the first start).
start_server() {
  local n=$1 out="$work/server-$1.out"
  SCIMLET_LOG=scimlet=warn "$bin" serve --listen 127.0.0.1:0 --data "$data" --cache-dir "$cache" \
    >"$out" 2>"$work/server-$n.err" &
  server_pid=$!
  for _ in $(seq 600); do
    if grep -q '^scimlet serving SCIM at ' "$out"; then
      base="$(sed -n 's/^scimlet serving SCIM at //p' "$out")"
      if [ "$n" = 1 ]; then
        token="$(sed -n '/^Created tenant/{n;p;}' "$out")"
      fi
      return
    fi
    kill -0 "$server_pid" 2>/dev/null || fail "server $n exited at start"
    sleep 0.5
  done
  fail "server $n did not start in 300 s"
}

# scim METHOD PATH [BODY]: prints the HTTP status; the body goes to $bodyfile (one per writer,
# as calls run in command substitutions, which are subshells).
bodyfile="$work/body.main"
scim() {
  local args=(-s -o "$bodyfile" -w '%{http_code}' --max-time 30
    -X "$1" -H "Authorization: Bearer $token" -H 'Content-Type: application/scim+json')
  [ $# -ge 3 ] && args+=(--data-binary "$3")
  curl "${args[@]}" "$base$2" || true
}

body() { cat "$bodyfile"; }
id_of() { grep -o '"id":"[^"]*"' | head -n 1 | cut -d'"' -f4; }

add_member() {
  printf '{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"add","path":"members","value":[{"value":"%s"}]}]}' "$1"
}

# One writer: creates users (every 10th invalid: must be refused) and adds each new user to
# the group (every 10th add names a user that does not exist: must be refused). Each answer
# is logged as "create NAME STATUS ID" or "member ID STATUS". Stops once the server is gone.
writer() {
  local w=$1 log="$work/log.$1" bodyfile="$work/body.$1" i name code id member
  for i in $(seq "$per_writer"); do
    name="crash-$w-$i@example.com"
    if [ $((i % 10)) = 3 ]; then
      code=$(scim POST /Users "{\"userName\":\"$name\",\"active\":\"sometimes\"}")
    else
      code=$(scim POST /Users "{\"userName\":\"$name\"}")
    fi
    id=""
    [ "$code" = 201 ] && id=$(body | id_of)
    echo "create $name $code $id" >>"$log"
    [ "$code" = 000 ] && return
    member="$id"
    [ $((i % 10)) = 6 ] && member="ghost-$w-$i"
    [ -n "$member" ] || continue
    code=$(scim PATCH "/Groups/$group" "$(add_member "$member")")
    echo "member $member $code" >>"$log"
    [ "$code" = 000 ] && return
  done
  return 0
}

start_server 1
[ -n "$token" ] || fail "no token printed on first start"
code=$(scim POST /Groups '{"displayName":"Crash"}')
[ "$code" = 201 ] || fail "creating the group answered $code: $(body)"
group=$(body | id_of)

per_writer=$(((creates + workers - 1) / workers))
writer_pids=()
for w in $(seq "$workers"); do
  writer "$w" &
  writer_pids+=($!)
done

# Kill mid-load: once about a third of the creates have been answered (bounded wait).
for _ in $(seq 1200); do
  answered=$(cat "$work"/log.* 2>/dev/null | grep -c '^create ' || true)
  [ "$answered" -ge $((creates / 3)) ] && break
  sleep 0.1
done
kill -9 "$server_pid"
{ wait "$server_pid"; } 2>/dev/null || true # reaped quietly (no "Killed" notice)
server_pid=""
for pid in "${writer_pids[@]}"; do wait "$pid"; done

start_server 2
log="$(cat "$work"/log.*)"
acked=0 refused=0 unanswered=0
while read -r kind name code id; do
  [ "$kind" = create ] || continue
  case "$code" in
  201)
    acked=$((acked + 1))
    got=$(scim GET "/Users/$id")
    [ "$got" = 200 ] || fail "acknowledged user $name ($id) answers $got after the crash"
    body | grep -qF "\"userName\":\"$name\"" || fail "user $id lost its userName: $(body)"
    ;;
  4??)
    refused=$((refused + 1))
    got=$(scim GET "/Users?filter=userName%20eq%20%22$name%22")
    body | grep -q '"totalResults":0' || fail "refused user $name exists: $(body)"
    ;;
  000) unanswered=$((unanswered + 1)) ;;
  *) fail "create $name answered $code" ;;
  esac
done <<<"$log"

got=$(scim GET "/Groups/$group?attributes=members")
[ "$got" = 200 ] || fail "group answers $got after the crash"
members="$(body | grep -o '"value":"[^"]*"' | cut -d'"' -f4 || true)"
added=0
while read -r kind member code; do
  [ "$kind" = member ] || continue
  case "$code" in
  2??)
    added=$((added + 1))
    grep -qxF "$member" <<<"$members" || fail "acknowledged member $member is missing"
    ;;
  4??) ! grep -qxF "$member" <<<"$members" || fail "refused member $member is present" ;;
  000) ;;
  *) fail "member add $member answered $code" ;;
  esac
done <<<"$log"

[ "$acked" -gt 0 ] && [ "$refused" -gt 0 ] || fail "too little load before the kill ($acked acked, $refused refused)"
code=$(scim POST /Users '{"userName":"after-the-crash@example.com"}')
[ "$code" = 201 ] || fail "a create after the restart answered $code"
report="$("$bin" check --data "$data")" || fail "scimlet check: $report"

echo "crash test: $acked creates and $added member adds acknowledged and present, $refused refused and absent, $unanswered cut off by kill -9; scimlet check clean"
