# SCIM conformance checkers of ../shared/conformance and the verdicts read from their output,
# shared by every host's conformance stage (.ci/conformance: the Rust host; .ci/node: the Node
# host), so one list of exclusions applies to all. Source it; it needs `shared` (the kit),
# `home` (the tools' folder), `out` (a folder for outputs) and `status` (set to 1 on failure).
# The exclusions are the checks that contradict scimlet's documented contract (see the README's
# Conformance section):
#   - scim2-tester's CRUD checks are limited to User and Group: /Roles is a read-only resource
#     type (roles come from the tenant's policy), and the tester POSTs/PUTs/DELETEs every type;
#   - scim2-tester's Group PATCH add/replace checks of `members` fail when the response differs
#     from what they sent only by each member's read-only `display` (.ci/scim2_tester_expected.py);
#   - scim-sanity's "PATCH /Groups/{id} add member" adds the id "fake-member-id" and expects 200;
#     scimlet refuses members that are not users of the tenant with 400 invalidValue;
#   - five assertions of Microsoft's reference Postman collection (listed in its function).
# Each checker counts as passed only if it ran to its closing summary line and its exit status
# agrees: a traceback, a missing tool or an unreachable server is a failure, never a pass.
ci_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# checker_failed NAME REASON OUTPUT: records a failure of NAME with the tail of its output.
checker_failed() {
  echo "$1 FAILED: $2; last lines of its output:" >&2
  tail -n 20 "$3" >&2
  status=1
}

# run_scim2_tester URL TOKEN: a closing "N passed, N failed, N skipped" with N > 0 passes, and
# exit 0 — or exit 1 whose only failures are the two expected Group `display` ones
# (.ci/scim2_tester_expected.py reads its JSON report; the tester exits 1 on any failure).
run_scim2_tester() {
  local url=$1 token=$2 rc=0 summary
  "$home/venv/bin/python" "$shared/run_scim2_tester.py" --url "$url" --token "$token" \
    --resource-types User,Group --json "$out/scim2_tester.json" > "$out/scim2_tester.txt" 2>&1 || rc=$?
  echo "scim2-tester (strict, User+Group): $(tail -n 1 "$out/scim2_tester.txt") (exit $rc)"
  summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed, [0-9]+ skipped$' "$out/scim2_tester.txt" | tail -n 1 || true)
  if ! grep -qE '^[1-9][0-9]* passed, ' <<<"$summary"; then
    grep -E 'ERROR|CRITICAL' "$out/scim2_tester.txt" | head -20 >&2 || true
    checker_failed scim2-tester "no closing line with passes" "$out/scim2_tester.txt"
  elif grep -qE ', 0 failed, ' <<<"$summary"; then
    [ "$rc" = 0 ] || checker_failed scim2-tester "exit status $rc" "$out/scim2_tester.txt"
  elif ! python3 "$ci_dir/scim2_tester_expected.py" "$out/scim2_tester.json" >&2; then
    grep -E 'ERROR|CRITICAL' "$out/scim2_tester.txt" | head -20 >&2 || true
    checker_failed scim2-tester "unexpected failures" "$out/scim2_tester.txt"
  elif [ "$rc" != 1 ]; then
    checker_failed scim2-tester "exit status $rc with failures" "$out/scim2_tester.txt"
  fi
}

# run_scim_sanity URL TOKEN: a summary line with passes, and exit 0 — or exit 1 whose only
# failures are the excluded check (scim-sanity exits 1 on any failure).
run_scim_sanity() {
  local url=$1 token=$2 rc=0 failures unexpected
  timeout 300 "$home/venv-sanity/bin/scim-sanity" probe "$url" --token "$token" --i-accept-side-effects \
    > "$out/scim_sanity.txt" 2>&1 || rc=$?
  echo "scim-sanity probe: $(grep -E '[0-9]+ passed, ' "$out/scim_sanity.txt" | tail -n 1) (exit $rc)"
  failures=$(grep -E '^\s*\[(FAIL|ERR ?)\]' "$out/scim_sanity.txt" || true)
  unexpected=$(grep -v 'PATCH /Groups/{id} add member' <<<"$failures" || true)
  if ! grep -qE '^\s*[1-9][0-9]* passed, .*[0-9]+ total' "$out/scim_sanity.txt"; then
    checker_failed scim-sanity "no summary line with passes" "$out/scim_sanity.txt"
  elif [ -n "$unexpected" ]; then
    echo "$unexpected" >&2
    checker_failed scim-sanity "unexpected failures" "$out/scim_sanity.txt"
  elif ! { [ "$rc" = 0 ] || { [ "$rc" = 1 ] && [ -n "$failures" ]; }; }; then
    checker_failed scim-sanity "exit status $rc" "$out/scim_sanity.txt"
  fi
}

# run_okta_spec URL TOKEN: Okta's SPEC suite; exit 0 and a closing "N passed, 0 failed", N > 0.
run_okta_spec() {
  local url=$1 token=$2 rc=0 summary
  node "$shared/okta_runscope_replay.mjs" --suite "$shared/suites/Okta-SCIM-20-SPEC-Test.json" --base "$url" \
    --token "$token" --seed > "$out/okta_spec.txt" 2>&1 || rc=$?
  echo "Okta SCIM 2.0 SPEC test: $(sed '/^[[:space:]]*$/d' "$out/okta_spec.txt" | tail -n 1) (exit $rc)"
  summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$out/okta_spec.txt" | tail -n 1 || true)
  if ! grep -qE '^[1-9][0-9]* passed, 0 failed$' <<<"$summary"; then
    checker_failed "Okta SPEC test" "no closing line with passes and 0 failures" "$out/okta_spec.txt"
  elif [ "$rc" != 0 ]; then
    checker_failed "Okta SPEC test" "exit status $rc" "$out/okta_spec.txt"
  fi
}

# run_ms_postman URL TOKEN: Microsoft's reference Postman collection (README, Conformance), on
# a fresh tenant of its own (the collection asserts totals on an empty one). Its runner exits 0
# even when assertions fail, so the verdict is read from its output: the runner must exit 0,
# print "requests N (failed 0), …" and the closing "N passed, N failed" line, and every
# "  FAIL [status] request: assertion -> message" line must be one of these expected failures
# (each at most once; whole-line extended regexes):
#   - PATCH /Users answers 200 with the resource where the collection wants 204 (both RFC 7644
#     §3.5.2 answers; scim-sanity wants the 200);
#   - members that are not users of the tenant ("string id 1") are refused with 400;
#   - a member's `display` is read-only and derived from the user (RFC 7643 §2.4), so the
#     client's "displayName": "new User" on the member is not echoed back.
run_ms_postman() {
  local url=$1 ms_token=$2 ms_exit=0 ms_summary ms_ok=1 ms_fail_lines line hit i
  local ms_expected=(
    "  FAIL \[200\] Get group by id: Body contians user -> expected '.*' to include 'new User'"
    '  FAIL \[200\] Patch user omalley new username: Status code is 204 -> expected response to have status code 204 but got 200'
    '  FAIL \[200\] patch user omalley active with boolean: Status code is 204 -> expected response to have status code 204 but got 200'
    '  FAIL \[400\] Group patch add member: Status code is 204 -> expected response to have status code 204 but got 400'
    '  FAIL \[400\] Group patch add member2: Status code is 204 -> expected response to have status code 204 but got 400'
  )
  local ms_used=()
  NEWMAN_JSON="$out/ms_postman.json" bash "$shared/run_ms_postman.sh" "$url" "$ms_token" \
    > "$out/ms_postman.txt" 2>&1 || ms_exit=$?
  ms_summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$out/ms_postman.txt" | tail -n 1 || true)
  echo "Microsoft reference Postman: ${ms_summary:-no summary line}"
  if [ "$ms_exit" -ne 0 ]; then
    echo "  the runner exited with status $ms_exit:"; tail -n 5 "$out/ms_postman.txt"; ms_ok=0
  fi
  if ! grep -qE '^requests [0-9]+ \(failed 0\), assertions [0-9]+ \(failed [0-9]+\)$' "$out/ms_postman.txt"; then
    echo "  no 'requests N (failed 0)' line: a request failed outright, or the report is missing"; ms_ok=0
  fi
  ms_fail_lines=$(grep -cE '^  FAIL ' "$out/ms_postman.txt" || true)
  if [ -z "$ms_summary" ] || [ "${ms_summary#*passed, }" != "$ms_fail_lines failed" ] || [ "${ms_summary%% *}" = 0 ]; then
    echo "  the summary is missing, passes nothing, or disagrees with the $ms_fail_lines FAIL lines"; ms_ok=0
  fi
  while IFS= read -r line; do
    hit=""
    for i in "${!ms_expected[@]}"; do
      if [ -z "${ms_used[$i]:-}" ] && printf '%s\n' "$line" | grep -Eqx -- "${ms_expected[$i]}"; then
        hit=$i; break
      fi
    done
    if [ -n "$hit" ]; then ms_used[$hit]=1; else echo "  unexpected: $line"; ms_ok=0; fi
  done < <(grep -E '^  FAIL ' "$out/ms_postman.txt" || true)
  for i in "${!ms_expected[@]}"; do
    [ -n "${ms_used[$i]:-}" ] || echo "  note: expected failure now passes, tighten the list: ${ms_expected[$i]}"
  done
  [ "$ms_ok" = 1 ] || status=1
}
