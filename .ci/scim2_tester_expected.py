#!/usr/bin/env python3
"""Exit 0 if every ERROR/CRITICAL result of a scim2-tester JSON report is an expected one.

usage: scim2_tester_expected.py scim2_tester.json

Expected (README, Conformance): scim2-tester's Group `check_add_attribute` and
`check_replace_attribute` compare the members a PATCH response returns with the members they sent.
scimlet fills each member's read-only `display` (RFC 7643 §2.4) from the user, so a
response differs from what was sent by `display` alone. Such a result is accepted only when
`display` is the sole difference; any other failure, or a missing or empty report, exits 1.
"""
import json
import re
import sys

CHECKS = {"check_add_attribute", "check_replace_attribute"}
PREFIX = "PATCH modify() returned unexpected value for 'members'."
DISPLAY = re.compile(r", display=(None|'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")")


def display_only(reason: str) -> bool:
    sent = re.search(r"^Patched value: (.*)$", reason, re.M)
    got = re.search(r"^Returned value: (.*)$", reason, re.M)
    if not (reason.startswith(PREFIX) and sent and got):
        return False
    if re.search(r"display=(?!None)", sent.group(1)):
        return False  # the check sent a display of its own: not this case
    return DISPLAY.sub("", sent.group(1)) == DISPLAY.sub("", got.group(1))


def main() -> int:
    try:
        results = json.load(open(sys.argv[1]))
    except (OSError, ValueError, IndexError) as e:
        print(f"  no scim2-tester report: {e}")
        return 1
    if not results:
        print("  the scim2-tester report is empty")
        return 1
    unexpected = [
        r
        for r in results
        if r["status"] in ("ERROR", "CRITICAL")
        and not (
            r["resource_type"] == "Group"
            and r["title"] in CHECKS
            and display_only(r["reason"] or "")
        )
    ]
    for r in unexpected:
        print(f"  unexpected: {r['status']} [{r['resource_type']}] {r['title']}: {r['reason']}")
    return 1 if unexpected else 0


if __name__ == "__main__":
    sys.exit(main())
