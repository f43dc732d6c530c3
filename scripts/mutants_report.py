"""Summarise a mutmut run (``make mutants``): per module, killed / survived / timeout / other,
then every survivor by name (``.venv/bin/mutmut show NAME`` prints its diff).

Reads mutmut's own result files (``mutants/**/*.py.meta``); only the mutants named by the
patterns on the command line count (the Makefile's, e.g. only ``safe_next`` of
``views/common.py``). Exit 1 if nothing matched (a run that tested nothing is no score).
"""

from __future__ import annotations

import fnmatch
import json
import re
import sys
from collections import Counter, defaultdict
from pathlib import Path

# mutmut's exit codes (mutmut/stats.py): 1 and 3 killed, 0 survived; timeouts by signal.
KILLED = {1, 3}
SURVIVED = {0}
TIMEOUT = {36, -24, 24, 152, 255}
NO_TESTS = {5, 33}


def status(code: int | None) -> str:
    if code in KILLED:
        return "killed"
    if code in SURVIVED:
        return "survived"
    if code in TIMEOUT:
        return "timeout"
    if code in NO_TESTS:
        return "no tests"
    return "not checked" if code is None else f"other ({code})"


def module_of(name: str) -> str:
    """``mimsdir.sync.guards.x_check__mutmut_5`` -> ``mimsdir.sync.guards``; methods are
    ``...xǁClassǁmethod__mutmut_N``."""
    return re.split(r"\.x[_ǁ]", name, maxsplit=1)[0]


def main(patterns: list[str]) -> int:
    results: dict[str, int | None] = {}
    for meta in sorted(Path("mutants").rglob("*.py.meta")):
        results.update(json.loads(meta.read_text(encoding="utf-8"))["exit_code_by_key"])
    chosen = {k: v for k, v in results.items()
              if not patterns or any(fnmatch.fnmatch(k, p) for p in patterns)}
    if not chosen:
        print("no mutants matched: did `mutmut run` get this far? (see mutants.log)")
        return 1
    by_module: dict[str, Counter[str]] = defaultdict(Counter)
    survivors: list[str] = []
    for name, code in chosen.items():
        s = status(code)
        by_module[module_of(name)][s] += 1
        if s != "killed":
            survivors.append(f"{s:9} {name}")
    cols = ("killed", "survived", "timeout", "no tests", "not checked")
    print(f"{'module':36} {'mutants':>7} " + " ".join(f"{c:>11}" for c in cols) + "  score")
    total: Counter[str] = Counter()
    for module in sorted(by_module):
        c = by_module[module]
        total.update(c)
        n = sum(c.values())
        print(f"{module:36} {n:7} " + " ".join(f"{c[k]:11}" for k in cols)
              + f"  {100 * c['killed'] / n:5.1f}%")
    n = sum(total.values())
    print(f"{'all':36} {n:7} " + " ".join(f"{total[k]:11}" for k in cols)
          + f"  {100 * total['killed'] / n:5.1f}%")
    if survivors:
        print("\nnot killed (`.venv/bin/mutmut show NAME` prints the change):")
        for line in sorted(survivors, key=lambda s: s.split()[-1]):
            print("  " + line)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
