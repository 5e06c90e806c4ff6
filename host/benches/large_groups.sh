#!/usr/bin/env bash
# Large groups end to end on the release binary, the numbers of issue 13:
#   1. `scimlet import` of N users, all members of one team "Big" (through the component);
#   2. `GET /Groups/{id}` of that team: status, members returned, time, and the server's peak
#      RSS (VmHWM from /proc) while it streams them;
#   3. `PUT /Groups/{id}` of a new, empty group "Pushed" with M of those users (Okta's
#      whole-group push), then again with the same minus 1 000 plus 1 000 others: status, time,
#      and whether exactly that membership is stored.
#
#   host/benches/large_groups.sh [--users N] [--put-members M]
#
#   --users N         users imported into "Big" (500000)
#   --put-members M   members of each PUT (100000; at most N - 1000)
#
# Needs python3 and curl. Builds `scimlet` in release mode first (CARGO_TARGET_DIR is honoured).
set -euo pipefail

USERS=500000
PUT=100000
while [ $# -gt 0 ]; do
  case "$1" in
    --users) USERS="$2"; shift 2 ;;
    --put-members) PUT="$2"; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
if [ "$PUT" -gt $((USERS - 1000)) ]; then
  echo "--put-members must be at most --users minus 1000" >&2
  exit 2
fi

root="$(cd "$(dirname "$0")/../.." && pwd)"
cargo build --release -p scimlet --quiet --manifest-path "$root/Cargo.toml"
bin="${CARGO_TARGET_DIR:-$root/target}/release/scimlet"
work="$(mktemp -d)"
server=""
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
data="$work/data"

"$bin" tenant create big --data "$data" >"$work/tenant.out" 2>/dev/null
token="$(tail -n 1 "$work/tenant.out")"
python3 - "$USERS" >"$work/users.jsonl" <<'EOF'
import json, sys
print(json.dumps({"type": "team", "name": "Big"}))
for i in range(int(sys.argv[1])):
    print(json.dumps({"type": "user", "userName": f"user{i:07d}@example.com", "teams": ["Big"]}))
EOF
start=$(date +%s%N)
"$bin" import big "$work/users.jsonl" --data "$data" >/dev/null 2>"$work/import.err"
import_s=$(python3 -c "print(($(date +%s%N) - $start) / 1e9)")

"$bin" serve --listen 127.0.0.1:0 --data "$data" >"$work/serve.out" 2>/dev/null &
server=$!
for _ in $(seq 1 600); do
  grep -q "serving SCIM at" "$work/serve.out" 2>/dev/null && break
  sleep 0.1
done
base="$(sed -n 's/^scimlet serving SCIM at //p' "$work/serve.out")"
auth="Authorization: Bearer $token"
ct="Content-Type: application/scim+json"

group_id="$(curl -sf -H "$auth" "$base/Groups?filter=displayName%20eq%20%22Big%22&attributes=id" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["Resources"][0]["id"])')"
get=$(curl -s -o "$work/group.json" -w '%{http_code} %{time_total}' -H "$auth" "$base/Groups/$group_id")
rss_kb=$(awk '/VmHWM/ {print $2}' "/proc/$server/status")
members=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["members"]))' "$work/group.json")

# The member ids of both PUTs, from the group just read.
python3 - "$work/group.json" "$PUT" "$work" <<'EOF'
import json, sys
ids = [m["value"] for m in json.load(open(sys.argv[1]))["members"]]
m, work = int(sys.argv[2]), sys.argv[3]
first, second = ids[:m], ids[1000:m] + ids[m:m + 1000]
for name, chosen in (("put1", first), ("put2", second)):
    body = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Pushed",
            "members": [{"value": i} for i in chosen]}
    json.dump(body, open(f"{work}/{name}.json", "w"))
    open(f"{work}/{name}.ids", "w").write("\n".join(sorted(chosen)))
EOF
pushed_id="$(curl -sf -X POST -H "$auth" -H "$ct" \
  --data '{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"Pushed"}' \
  "$base/Groups" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')"
put_line() {
  local name="$1"
  local result
  result=$(curl -s -o /dev/null -w '%{http_code} %{time_total}' -X PUT -H "$auth" -H "$ct" \
    --data-binary "@$work/$name.json" "$base/Groups/$pushed_id")
  curl -sf -H "$auth" "$base/Groups/$pushed_id?attributes=members" -o "$work/$name.after"
  local exact
  exact=$(python3 -c '
import json, sys
got = sorted(m["value"] for m in json.load(open(sys.argv[1])).get("members", []))
want = open(sys.argv[2]).read().split("\n")
print("yes" if got == want else f"NO,{len(got)}-stored,{len(want)}-wanted")' "$work/$name.after" "$work/$name.ids")
  echo "$result $exact $(stat -c %s "$work/$name.json")"
}
read -r put1_status put1_s put1_exact put1_bytes <<<"$(put_line put1)"
read -r put2_status put2_s put2_exact put2_bytes <<<"$(put_line put2)"
read -r get_status get_s <<<"$get"
rss_end_kb=$(awk '/VmHWM/ {print $2}' "/proc/$server/status")

cat <<EOF
| step | result |
|---|---|
| \`scimlet import\` of $USERS users into one team | $(printf '%.1f' "$import_s") s |
| \`GET /Groups/{id}\` ($USERS members) | $get_status, $members members, $(printf '%.2f' "$get_s") s, server peak RSS $((rss_kb / 1024)) MB |
| \`PUT /Groups/{id}\` of an empty group with $PUT members ($((put1_bytes / 1024)) KiB) | $put1_status in $(printf '%.2f' "$put1_s") s, exactly that membership stored: $put1_exact |
| same minus 1 000 plus 1 000 others | $put2_status in $(printf '%.2f' "$put2_s") s, exactly that membership stored: $put2_exact |
| server peak RSS over the whole run | $((rss_end_kb / 1024)) MB |
EOF
