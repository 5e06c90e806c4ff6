#!/usr/bin/env bash
# Throughput of the Node host next to the Rust host, same component, same scenarios, one run:
# each host on a fresh SQLite data dir on a free loopback port, then bench/load.mjs (16
# connections, SECONDS s per scenario) against each. The Rust host is the release binary.
# usage: hosts/node/bench/compare.sh [SECONDS]       (from anywhere; needs npm ci + transpile)
set -euo pipefail
cd "$(dirname "$0")/../../.."
seconds=${1:-10}
target=${CARGO_TARGET_DIR:-$PWD/target}
rust="$target/release/scimlet"
[ -x "$rust" ] || cargo build --release -p scimlet
work=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"' EXIT

# start NAME COMMAND...: starts a host, waits for its banner, sets url and token.
start() {
  local name=$1
  shift
  "$@" > "$work/$name.out" 2> "$work/$name.err" &
  pids+=($!)
  for _ in $(seq 1 300); do
    grep -q "serving SCIM" "$work/$name.out" && break
    sleep 0.2
  done
  url=$(grep -oE 'http://[^ ]+/scim/v2' "$work/$name.out" | head -n 1)
  token=$(grep -m1 -E '^scimlet_' "$work/$name.out")
  [ -n "$url" ] && [ -n "$token" ] || { cat "$work/$name.err" >&2; echo "$name did not start" >&2; exit 1; }
}

start rust "$rust" serve --listen 127.0.0.1:0 --data "$work/rust" --cache-dir "$target/cwasm-cache"
rust_url=$url rust_token=$token
start node node hosts/node/bin/scimlet-node.mjs serve --listen 127.0.0.1:0 --data "$work/node"
node_url=$url node_token=$token
echo "component sha256 $(sha256sum "$target/guest/release/wasm32-wasip2/guest/scimlet_guest.wasm" | cut -d' ' -f1); $(nproc) cores; ${seconds} s per scenario"
for scenario in get filter create; do
  echo "rust $(node hosts/node/bench/load.mjs "$rust_url" "$rust_token" --scenario $scenario --seconds "$seconds")"
  echo "node $(node hosts/node/bench/load.mjs "$node_url" "$node_token" --scenario $scenario --seconds "$seconds")"
done
