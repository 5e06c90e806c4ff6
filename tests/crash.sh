#!/usr/bin/env bash
# Crash test: kill -9 the server in the middle of concurrent writes, restart it on the same data
# dir, and verify that every write that was answered 2xx is there — creates, deactivations
# (PATCH), replacements (PUT), deletions, member adds and member removals — nothing answered 4xx
# is, and `scimlet check` finds the store consistent. The kill must cut off at least one request
# in flight (an answer that never came on an accepted connection), or the run proves nothing.
#
# Usage: tests/crash.sh [CREATES]   (default 200; uses the debug binary, so build it first)
# Loopback only; every loop is bounded.
set -euo pipefail
cd "$(dirname "$0")/.."

target="${CARGO_TARGET_DIR:-target}"
bin="$target/debug/scimlet"
creates="${1:-200}"
workers=8
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

# scim METHOD PATH [BODY]: prints the HTTP status, or `cut` when the connection was accepted but
# no answer came (the server died with the request in flight), or `000` when no connection
# could be made. The body goes to $bodyfile (one per writer, as calls run in command
# substitutions, which are subshells).
bodyfile="$work/body.main"
scim() {
  local args=(-s -o "$bodyfile" -w '%{http_code}' --max-time 30
    -X "$1" -H "Authorization: Bearer $token" -H 'Content-Type: application/scim+json')
  [ $# -ge 3 ] && args+=(--data-binary "$3")
  local code rc=0
  code=$(curl "${args[@]}" "$base$2") || rc=$?
  case "$rc" in
  0) echo "$code" ;;
  7) echo 000 ;;   # connection refused: the server was already gone
  *) echo cut ;;   # empty reply, reset, timeout: the request was in flight
  esac
}

body() { cat "$bodyfile"; }
id_of() { grep -o '"id":"[^"]*"' | head -n 1 | cut -d'"' -f4; }

patch_op() {
  printf '{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[%s]}' "$1"
}
add_member() { patch_op "$(printf '{"op":"add","path":"members","value":[{"value":"%s"}]}' "$1")"; }
remove_member() { patch_op "$(printf '{"op":"remove","path":"members[value eq \\"%s\\"]"}' "$1")"; }
deactivate() { patch_op '{"op":"replace","path":"active","value":false}'; }

gone() { [ "$1" = 000 ] || [ "$1" = cut ]; }

# One writer: creates users (every 10th invalid: must be refused) and adds each new user to
# the group (every 10th add names a user that does not exist: must be refused), then changes the
# new user one way, by turn: deactivates it (PATCH), replaces it (PUT), deletes it, removes it
# from the group, or leaves it. Each answer is logged as "create NAME STATUS ID" or
# "OP ID STATUS" (OP: member, deactivate, put, delete, unmember). Stops once the server is gone.
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
    gone "$code" && return
    member="$id"
    [ $((i % 10)) = 6 ] && member="ghost-$w-$i"
    [ -n "$member" ] || continue
    code=$(scim PATCH "/Groups/$group" "$(add_member "$member")")
    echo "member $member $code" >>"$log"
    gone "$code" && return
    [ -n "$id" ] || continue
    case $((i % 5)) in
    0) code=$(scim PATCH "/Users/$id" "$(deactivate)") op=deactivate ;;
    1) code=$(scim PUT "/Users/$id" "{\"userName\":\"$name\",\"displayName\":\"replaced\"}") op=put ;;
    2) code=$(scim DELETE "/Users/$id") op=delete ;;
    3) code=$(scim PATCH "/Groups/$group" "$(remove_member "$id")") op=unmember ;;
    *) continue ;;
    esac
    echo "$op $id $code" >>"$log"
    gone "$code" && return
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
# Then at a moment when the server reports at least three requests inside the component (bounded
# wait), so that one is still in flight when the kill lands.
root="${base%/scim/v2}"
for _ in $(seq 300); do
  curl -s --max-time 5 "$root/metrics" | grep -q '^scimlet_instances_in_use [3-9]' && break
done
kill -9 "$server_pid"
{ wait "$server_pid"; } 2>/dev/null || true # reaped quietly (no "Killed" notice)
server_pid=""
for pid in "${writer_pids[@]}"; do wait "$pid"; done

start_server 2
log="$(cat "$work"/log.*)"
# What each acknowledged write leaves, per user id, in log order (each writer's log is in order
# and only it touches its users): exists (yes/no/unknown), member (yes/no/unknown), active
# (true/false), displayName (replaced/none). A write cut off by the kill makes its effect unknown.
declare -A exists member active display names
acked=0 refused=0 changed=0 unanswered=0 cut=0
while read -r kind a b c; do
  case "$kind" in
  create)
    name=$a code=$b id=$c
    case "$code" in
    201) acked=$((acked + 1)); exists[$id]=yes member[$id]=no active[$id]=true display[$id]=none
      names[$id]=$name ;;
    4??)
      refused=$((refused + 1))
      scim GET "/Users?filter=userName%20eq%20%22$name%22" >/dev/null
      body | grep -q '"totalResults":0' || fail "refused user $name exists: $(body)"
      ;;
    000) unanswered=$((unanswered + 1)) ;;
    cut) cut=$((cut + 1)) ;;
    *) fail "create $name answered $code" ;;
    esac
    ;;
  member | deactivate | put | delete | unmember)
    id=$a code=$b
    case "$code" in
    000) unanswered=$((unanswered + 1)); continue ;;
    cut) cut=$((cut + 1)) ;;
    2??) [ "$kind" = member ] || changed=$((changed + 1)) ;;
    4??) [ "$kind" = member ] && [ -z "${exists[$id]:-}" ] && { refused=$((refused + 1)); continue; }
      fail "$kind $id answered $code" ;;
    *) fail "$kind $id answered $code" ;;
    esac
    known=yes
    [ "$code" = cut ] && known=unknown
    case "$kind" in
    member) member[$id]=$([ $known = yes ] && echo yes || echo unknown) ;;
    deactivate) [ $known = yes ] && active[$id]=false || active[$id]=unknown ;;
    put) [ $known = yes ] && display[$id]=replaced || display[$id]=unknown ;;
    delete) exists[$id]=$([ $known = yes ] && echo no || echo unknown)
      [ "${member[$id]}" = no ] || member[$id]=$([ $known = yes ] && echo no || echo unknown) ;;
    unmember) [ "${member[$id]}" = no ] || member[$id]=$([ $known = yes ] && echo no || echo unknown) ;;
    esac
    ;;
  esac
done <<<"$log"

got=$(scim GET "/Groups/$group?attributes=members")
[ "$got" = 200 ] || fail "group answers $got after the crash"
members="$(body | grep -o '"value":"[^"]*"' | cut -d'"' -f4 || true)"
while read -r m; do
  [ -n "$m" ] || continue
  [ -n "${exists[$m]:-}" ] || fail "the group holds $m, which no acknowledged create made"
done <<<"$members"
for id in "${!exists[@]}"; do
  got=$(scim GET "/Users/$id")
  case "${exists[$id]}/$got" in
  yes/200 | unknown/200)
    body | grep -qF "\"userName\":\"${names[$id]}\"" || fail "user $id lost its userName: $(body)"
    case "${active[$id]}" in
    false) body | grep -qF '"active":false' || fail "user $id was deactivated (acknowledged) but reads $(body)" ;;
    true) ! body | grep -qF '"active":false' || fail "user $id is inactive, yet no deactivation was acknowledged: $(body)" ;;
    esac
    case "${display[$id]}" in
    replaced) body | grep -qF '"displayName":"replaced"' || fail "user $id was replaced (acknowledged) but reads $(body)" ;;
    none) ! body | grep -qF '"displayName"' || fail "user $id has a displayName nobody set: $(body)" ;;
    esac
    ;;
  no/404 | unknown/404) ;;
  yes/*) fail "acknowledged user ${names[$id]} ($id) answers $got after the crash" ;;
  no/*) fail "user $id was deleted (acknowledged) but answers $got after the crash" ;;
  *) fail "user $id answers $got after the crash" ;;
  esac
  in_group=no
  grep -qxF "$id" <<<"$members" && in_group=yes
  case "${member[$id]}/$in_group" in
  yes/yes | no/no | unknown/*) ;;
  yes/no) fail "acknowledged member $id is missing from the group" ;;
  no/yes) fail "user $id is in the group although its removal or deletion was acknowledged (or it was never added)" ;;
  esac
done
# Refused member adds (ghost ids) left nothing.
while read -r kind m code; do
  [ "$kind" = member ] && [[ "$code" == 4?? ]] || continue
  ! grep -qxF "$m" <<<"$members" || fail "refused member $m is present"
done <<<"$log"

[ "$acked" -gt 0 ] && [ "$refused" -gt 0 ] && [ "$changed" -gt 0 ] ||
  fail "too little load before the kill ($acked creates and $changed changes acked, $refused refused)"
[ "$cut" -gt 0 ] || fail "kill -9 cut off no request in flight: the crash interrupted nothing"
code=$(scim POST /Users '{"userName":"after-the-crash@example.com"}')
[ "$code" = 201 ] || fail "a create after the restart answered $code"
report="$("$bin" check --data "$data")" || fail "scimlet check: $report"

echo "crash test: $acked creates and $changed deactivations, replacements, deletions and member removals acknowledged and present, $refused refused and absent, $cut requests cut off in flight by kill -9 ($unanswered refused connections); scimlet check clean"
