#!/usr/bin/env python3
"""Reads the simulator's stats segment with VPP's own Python client and checks it.

Usage: stats_check.py SOCKET EXPECTED_JSON

EXPECTED_JSON maps entry names to the values vpp_papi should return, in plain JSON form:
scalars and gauges as integers, simple counters as [[thread values]], combined counters as
[[[packets, bytes]]], name vectors as lists of strings, symlinks as the per-thread column.
Prints {"ls": [...], "values": {...}, "mismatches": [...]} as JSON and exits 1 on any mismatch.
"""

import json
import sys


def plain(value):
    """Turns vpp_papi's list/tuple subclasses into plain JSON values."""
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    socket_path, expected = sys.argv[1], json.loads(sys.argv[2])
    try:
        from vpp_papi.vpp_stats import VPPStats
    except ImportError as e:
        print(f"vpp_papi is not installed ({e}): pip install vpp-papi", file=sys.stderr)
        return 3

    stats = VPPStats(socketname=socket_path)
    stats.connect()
    names = sorted(stats.ls([".*"]))
    values = {}
    mismatches = []
    for name, want in expected.items():
        if name not in names:
            mismatches.append({"name": name, "error": "missing from ls()"})
            continue
        got = plain(stats[name])
        values[name] = got
        if got != want:
            mismatches.append({"name": name, "expected": want, "got": got})
    stats.disconnect()
    print(json.dumps({"ls": names, "values": values, "mismatches": mismatches}))
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
