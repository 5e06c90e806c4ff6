#!/usr/bin/env bash
# Runs every cargo-fuzz target of the guest for SECONDS each (default 60), starting from the
# committed seeds (seeds/TARGET) plus the corpus earlier runs grew (corpus/TARGET, not committed).
# Installs what it needs: the nightly toolchain (cargo-fuzz needs it) and cargo-fuzz itself. A
# machine that cannot fetch toolchains uses its pinned stable one with RUSTC_BOOTSTRAP=1, which
# accepts the same unstable flags.
# A crash leaves its input in artifacts/TARGET/ and makes this script exit non-zero after the
# other targets have run. So does a target that did not run for its whole budget, and a
# `cargo fuzz list` that fails or does not name exactly the targets of fuzz_targets/: fuzzing
# never stops silently. Summary lines (executions, seconds, corpus size) go to stdout.
set -euo pipefail
cd "$(dirname "$0")"
budget="${1:-60}"

if rustup run nightly rustc --version >/dev/null 2>&1 ||
  rustup toolchain install nightly --profile minimal >/dev/null 2>&1; then
  fuzz=(cargo +nightly fuzz)
else
  echo "no nightly toolchain to be had: fuzzing with $(rustc --version) and RUSTC_BOOTSTRAP=1"
  export RUSTC_BOOTSTRAP=1
  fuzz=(cargo fuzz)
fi
cargo fuzz --version >/dev/null 2>&1 || cargo install cargo-fuzz --locked

# Builds of their own (sanitizer flags differ from the workspace's): keep them out of the
# workspace target dir that CI shares between runs, but cache them the same way.
target_dir="${FUZZ_TARGET_DIR:-${CARGO_TARGET_DIR:+$CARGO_TARGET_DIR/fuzz}}"
target_dir="${target_dir:-$PWD/target}"
unset CARGO_TARGET_DIR
logs="$target_dir/logs"
mkdir -p "$logs"

# The targets this script knows of: one file each in fuzz_targets/. cargo-fuzz must list
# exactly these, or some would never run.
known=()
for file in fuzz_targets/*.rs; do
  [ -e "$file" ] && known+=("$(basename "$file" .rs)")
done
if [ ${#known[@]} -eq 0 ]; then
  echo "no fuzz targets in guest/fuzz/fuzz_targets/" >&2
  exit 1
fi
if ! listing=$("${fuzz[@]}" list --fuzz-dir .); then
  echo "cargo fuzz list failed" >&2
  exit 1
fi
targets=()
for target in $listing; do targets+=("$target"); done
if [ "$(printf '%s\n' "${targets[@]}" | sort)" != "$(printf '%s\n' "${known[@]}" | sort)" ]; then
  echo "cargo fuzz list names [${targets[*]}], fuzz_targets/ holds [${known[*]}]" >&2
  exit 1
fi

failed=()
for target in "${targets[@]}"; do
  mkdir -p "corpus/$target" "artifacts/$target"
  # The guest is safe Rust: no sanitizer, which doubles the execution rate; overflow checks
  # and debug assertions stay on. A 10 s input is a hang (a denial of service), so a failure.
  if "${fuzz[@]}" run --fuzz-dir . --sanitizer none --target-dir "$target_dir" \
    "$target" "corpus/$target" "seeds/$target" -- \
    -max_total_time="$budget" -timeout=10 -dict=scim.dict -print_final_stats=1 \
    >"$logs/$target.log" 2>&1; then
    status=ok
  else
    status=FAILED
    failed+=("$target")
    tail -n 40 "$logs/$target.log"
  fi
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$logs/$target.log" | tail -1)
  secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$logs/$target.log" | tail -1)
  # A run that exits 0 but executed nothing, or stopped before its budget, checked too little.
  if [ "$status" = ok ] && ! [ "${runs:-0}" -gt 0 ] 2>/dev/null; then
    status="FAILED (no executions reported)"
    failed+=("$target")
  elif [ "$status" = ok ] && ! [ "${secs:--1}" -ge "$budget" ] 2>/dev/null; then
    status="FAILED (ran ${secs:-?} s of its $budget s budget)"
    failed+=("$target")
  fi
  echo "fuzz $target: $status, ${runs:-?} executions in ${secs:-?} s, corpus $(ls "corpus/$target" | wc -l) inputs"
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz targets that failed or did not run their budget: ${failed[*]} (logs in $logs, inputs in guest/fuzz/artifacts/)" >&2
  exit 1
fi
