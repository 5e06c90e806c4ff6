#!/usr/bin/env bash
# CI self-check: sabotages each CI stage that could pass while checking nothing, and requires the
# stage to fail. Cheap: stubs stand in for cargo, rustup, the fuzzer and the conformance
# checkers, so nothing is fuzzed or probed for real. Each sabotage has a positive control (the
# same stubs behaving well make the stage pass), so a stage that fails for an unrelated reason
# does not count as caught.
#   - guest/fuzz/run.sh: `cargo fuzz list` failing, printing nothing or missing a target; a
#     target that crashes, executes nothing or stops before its budget;
#   - .ci/conformance: each checker crashing without its summary line, missing, exiting non-zero
#     after a good summary, or reporting failures other than the documented ones;
#   - .ci/run: .ci/conformance, .ci/node or .ci/browser missing or not executable.
# The conformance part starts the debug binary (as .ci/conformance does); build it first.
# Usage: tests/ci-selfcheck.sh
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
stubs="$work/bin"
mkdir -p "$stubs"
checks=0

fail() {
  echo "CI self-check FAILED: $*" >&2
  exit 1
}

# expect WANT NAME COMMAND...: runs COMMAND with its output in $work/last.log; WANT is pass or
# fail (any non-zero exit).
expect() {
  local want=$1 name=$2 rc=0
  shift 2
  "$@" >"$work/last.log" 2>&1 || rc=$?
  checks=$((checks + 1))
  case "$want/$rc" in
  pass/0) ;;
  pass/*) tail -n 30 "$work/last.log" >&2; fail "$name: exited $rc, expected success" ;;
  fail/0) tail -n 30 "$work/last.log" >&2; fail "$name: exited 0, expected a failure" ;;
  esac
}

# --- Stubs on PATH: rustup and cargo (cargo fuzz behaves as STUB_FUZZ says). ----------------
cat >"$stubs/rustup" <<'EOF'
#!/usr/bin/env bash
exit 0
EOF
cat >"$stubs/cargo" <<'EOF'
#!/usr/bin/env bash
# cargo stub: `cargo [+toolchain] fuzz list|run|--version`; anything else succeeds silently.
words=" $* "
case "$words" in
*" fuzz --version "*) echo "cargo-fuzz 0.0.0 (stub)" ;;
*" fuzz list "*)
  case "${STUB_FUZZ:-ok}" in
  list-fails) echo "error: could not list" >&2; exit 101 ;;
  list-empty) ;;
  list-missing) ls fuzz_targets | sed 's/\.rs$//' | tail -n +2 ;;
  *) ls fuzz_targets | sed 's/\.rs$//' ;;
  esac
  ;;
*" fuzz run "*)
  budget=$(sed -n 's/.*-max_total_time=\([0-9]*\).*/\1/p' <<<"$words")
  case "${STUB_FUZZ:-ok}" in
  crash) echo "==1== ERROR: libFuzzer: deadly signal"; exit 77 ;;
  no-executions) echo "stat::number_of_executed_units: 0"; echo "Done 0 runs in $budget second(s)" ;;
  short) echo "stat::number_of_executed_units: 99"; echo "Done 99 runs in 0 second(s)" ;;
  silent) ;;
  *) echo "stat::number_of_executed_units: 1234"; echo "Done 1234 runs in $budget second(s)" ;;
  esac
  ;;
esac
exit 0
EOF
chmod +x "$stubs/rustup" "$stubs/cargo"

# --- guest/fuzz/run.sh ---------------------------------------------------------------------------
# A copy of the script with the real target list, run in a scratch dir (its corpus dirs go there).
fuzz="$work/fuzz"
mkdir -p "$fuzz/fuzz_targets"
cp guest/fuzz/run.sh "$fuzz/"
cp guest/fuzz/fuzz_targets/*.rs "$fuzz/fuzz_targets/"
fuzz_run() { STUB_FUZZ=$1 PATH="$stubs:$PATH" FUZZ_TARGET_DIR="$work/fuzz-target" bash "$fuzz/run.sh" 3; }
expect pass "fuzz: every target runs its budget" fuzz_run ok
targets=$(ls guest/fuzz/fuzz_targets | wc -l)
[ "$(grep -c '^fuzz .*: ok, 1234 executions in 3 s' "$work/last.log")" = "$targets" ] ||
  fail "fuzz: the good run did not report all $targets targets: $(cat "$work/last.log")"
for sabotage in list-fails list-empty list-missing crash no-executions short silent; do
  expect fail "fuzz: $sabotage" fuzz_run "$sabotage"
done

# --- .ci/conformance -----------------------------------------------------------------------------
# A stub kit and tool home; each checker prints what STUB_<CHECKER> says. The real server starts.
kit="$work/kit" home="$work/home"
mkdir -p "$kit/suites" "$home/venv/bin" "$home/venv-sanity/bin"
printf '#!/usr/bin/env bash\nexit 0\n' >"$kit/run.sh"
printf '#!/usr/bin/env bash\nexit 0\n' >"$kit/setup.sh"
touch "$kit/run_scim2_tester.py" "$kit/okta_runscope_replay.mjs" "$kit/suites/Okta-SCIM-20-SPEC-Test.json"
cat >"$home/venv/bin/python" <<'EOF'
#!/usr/bin/env bash
# The JSON report goes where --json says, as the real runner writes it.
report=/dev/null
while [ $# -gt 0 ]; do [ "$1" = --json ] && report=$2; shift; done
display_failure() { # $1: check name, $2: what the response changed besides display
  printf '{"status": "ERROR", "resource_type": "Group", "title": "%s", "reason": "PATCH modify() returned unexpected value for '"'"'members'"'"'.\\nPatched value: [Member(value='"'"'u1'"'"', display=None)]\\nReturned value: [Member(value='"'"'u1'"'"'%s, display='"'"'Ada'"'"')]"}' "$1" "$2"
}
case "${STUB_SCIM2:-ok}" in
ok) echo "SUCCESS [User] create"; echo "138 passed, 0 failed, 0 skipped" ;;
display) # the two documented Group failures: a pass
  echo "[$(display_failure check_add_attribute ''), $(display_failure check_replace_attribute '')]" >"$report"
  echo "136 passed, 2 failed, 0 skipped"; exit 1 ;;
display-and-more) # a member changed beyond its display: a failure
  echo "[$(display_failure check_add_attribute ''), $(display_failure check_replace_attribute ', type='"'"'Group'"'"'')]" >"$report"
  echo "136 passed, 2 failed, 0 skipped"; exit 1 ;;
traceback) echo "Traceback (most recent call last):"; echo "ConnectionRefusedError"; exit 1 ;;
failures) echo "ERROR [User] replace: boom"; echo "137 passed, 1 failed, 0 skipped"; exit 1 ;;
bad-exit) echo "138 passed, 0 failed, 0 skipped"; exit 3 ;;
nothing-passed) echo "0 passed, 0 failed, 138 skipped" ;;
esac
EOF
cat >"$home/venv-sanity/bin/scim-sanity" <<'EOF'
#!/usr/bin/env bash
case "${STUB_SANITY:-ok}" in
ok) echo "  [PASS] POST /Users"; echo "  [FAIL] PATCH /Groups/{id} add member"; echo "  27 passed, 1 failed, 3 skipped, 31 total"; exit 1 ;;
clean) echo "  [PASS] POST /Users"; echo "  28 passed, 3 skipped, 31 total" ;;
traceback) echo "Traceback (most recent call last):"; exit 1 ;;
unexpected) echo "  [FAIL] GET /Users/{id}"; echo "  27 passed, 1 failed, 28 total"; exit 1 ;;
bad-exit) echo "  28 passed, 3 skipped, 31 total"; exit 2 ;;
esac
EOF
cat >"$stubs/node" <<'EOF'
#!/usr/bin/env bash
case "${STUB_OKTA:-ok}" in
ok) echo "92 passed, 0 failed" ;;
crash) echo "TypeError: fetch failed"; exit 1 ;;
failures) echo "[FAIL] Users: status 404"; echo "91 passed, 1 failed"; exit 1 ;;
bad-exit) echo "92 passed, 0 failed"; exit 1 ;;
esac
EOF
# Microsoft's collection: its five documented failures, or the sabotage STUB_MS names.
cat >"$kit/run_ms_postman.sh" <<'EOF'
#!/usr/bin/env bash
documented() {
  echo "  FAIL [200] Get group by id: Body contians user -> expected 'x' to include 'new User'"
  echo "  FAIL [200] Patch user omalley new username: Status code is 204 -> expected response to have status code 204 but got 200"
  echo "  FAIL [200] patch user omalley active with boolean: Status code is 204 -> expected response to have status code 204 but got 200"
  echo "  FAIL [400] Group patch add member: Status code is 204 -> expected response to have status code 204 but got 400"
  echo "  FAIL [400] Group patch add member2: Status code is 204 -> expected response to have status code 204 but got 400"
}
case "${STUB_MS:-ok}" in
ok) echo "requests 103 (failed 0), assertions 103 (failed 5)"; documented; echo "98 passed, 5 failed" ;;
unexpected) echo "requests 103 (failed 0), assertions 103 (failed 6)"; documented
  echo "  FAIL [404] Get user: Status code is 200 -> expected response to have status code 200 but got 404"
  echo "97 passed, 6 failed" ;;
no-summary) echo "Error: newman crashed" ;;
request-failed) echo "requests 103 (failed 1), assertions 103 (failed 5)"; documented; echo "98 passed, 5 failed" ;;
bad-exit) echo "requests 103 (failed 0), assertions 103 (failed 5)"; documented; echo "98 passed, 5 failed"; exit 2 ;;
esac
EOF
chmod +x "$kit/run.sh" "$kit/setup.sh" "$home/venv/bin/python" "$home/venv-sanity/bin/scim-sanity" "$stubs/node" "$kit/run_ms_postman.sh"
conformance() {
  env STUB_SCIM2="${1:-ok}" STUB_SANITY="${2:-ok}" STUB_OKTA="${3:-ok}" STUB_MS="${4:-ok}" PATH="$stubs:$PATH" \
    CONFORMANCE_KIT="$kit" CONFORMANCE_HOME="$home" "$repo/.ci/conformance"
}
expect pass "conformance: every checker passes (scim-sanity's excluded failure only)" conformance
expect pass "conformance: scim-sanity without failures" conformance ok clean ok
expect pass "conformance: scim2-tester's documented display failures only" conformance display
for sabotage in traceback failures bad-exit nothing-passed display-and-more; do
  expect fail "conformance: scim2-tester $sabotage" conformance "$sabotage" ok ok
done
for sabotage in traceback unexpected bad-exit; do
  expect fail "conformance: scim-sanity $sabotage" conformance ok "$sabotage" ok
done
for sabotage in crash failures bad-exit; do
  expect fail "conformance: Okta SPEC $sabotage" conformance ok ok "$sabotage"
done
for sabotage in unexpected no-summary request-failed bad-exit; do
  expect fail "conformance: Microsoft collection $sabotage" conformance ok ok ok "$sabotage"
done
mv "$home/venv/bin/python" "$work/python.away"
expect fail "conformance: scim2-tester's venv missing" conformance
mv "$work/python.away" "$home/venv/bin/python"

# --- .ci/run -------------------------------------------------------------------------------------
# A copy of .ci/run in a scratch tree whose stages are stubs; the conformance stub leaves a mark.
tree="$work/tree"
mkdir -p "$tree/.ci" "$tree/tests" "$tree/guest/fuzz"
cp .ci/run "$tree/.ci/run"
for stage in tests/crash.sh guest/fuzz/run.sh tests/ci-selfcheck.sh .ci/readme-serve; do
  printf '#!/usr/bin/env bash\nexit 0\n' >"$tree/$stage"
done
printf '#!/usr/bin/env bash\necho CONFORMANCE-RAN\n' >"$tree/.ci/conformance"
printf '#!/usr/bin/env bash\necho NODE-RAN\n' >"$tree/.ci/node"
printf '#!/usr/bin/env bash\necho BROWSER-RAN\n' >"$tree/.ci/browser"
chmod +x "$tree/.ci/conformance" "$tree/.ci/node" "$tree/.ci/browser"
ci_run() { PATH="$stubs:$PATH" bash "$tree/.ci/run"; }
expect pass "ci: every stage present" ci_run
grep -q CONFORMANCE-RAN "$work/last.log" || fail "ci: the conformance stage did not run"
grep -q NODE-RAN "$work/last.log" || fail "ci: the Node host stage did not run"
grep -q BROWSER-RAN "$work/last.log" || fail "ci: the browser stage did not run"
chmod -x "$tree/.ci/conformance"
expect fail "ci: .ci/conformance not executable" ci_run
! grep -q CONFORMANCE-RAN "$work/last.log" || fail "ci: ran a non-executable .ci/conformance"
rm "$tree/.ci/conformance"
expect fail "ci: .ci/conformance missing" ci_run
printf '#!/usr/bin/env bash\necho CONFORMANCE-RAN\n' >"$tree/.ci/conformance"
chmod +x "$tree/.ci/conformance"
chmod -x "$tree/.ci/node"
expect fail "ci: .ci/node not executable" ci_run
! grep -q NODE-RAN "$work/last.log" || fail "ci: ran a non-executable .ci/node"
chmod +x "$tree/.ci/node"
chmod -x "$tree/.ci/browser"
expect fail "ci: .ci/browser not executable" ci_run
! grep -q BROWSER-RAN "$work/last.log" || fail "ci: ran a non-executable .ci/browser"

echo "CI self-check: $checks checks; every sabotaged stage failed, every intact one passed"
