# Prints Autobahn's verdicts per case kind from reports/index.json and exits
# 1 if any case FAILED. Python 2.7 and 3 (runs in the suite's virtualenv).
from __future__ import print_function

import json
import sys

ACCEPTED = ("OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED")


def main(path):
    with open(path) as f:
        index = json.load(f)
    behavior = {}
    close = {}
    failed = []
    total = 0
    for agent, cases in sorted(index.items()):
        for case, result in cases.items():
            total += 1
            b = result.get("behavior", "?")
            c = result.get("behaviorClose", "?")
            behavior[b] = behavior.get(b, 0) + 1
            close[c] = close.get(c, 0) + 1
            if b not in ACCEPTED or c not in ACCEPTED:
                failed.append((agent, case, b, c))
    fmt = lambda d: ", ".join("%s %d" % kv for kv in sorted(d.items()))
    print("autobahn summary: %d cases" % total)
    print("autobahn behavior:      " + fmt(behavior))
    print("autobahn behaviorClose: " + fmt(close))
    key = lambda t: [int(p) if p.isdigit() else p for p in t[1].split(".")]
    for agent, case, b, c in sorted(failed, key=key):
        print("autobahn FAILED: %s case %s behavior %s close %s" % (agent, case, b, c))
    if total == 0:
        print("autobahn: no cases ran")
        return 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
