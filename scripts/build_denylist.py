"""Write the deny-list of slapd's password check module (slapd-modules/mims_pwcheck.c).

Run by scripts/bootstrap.sh: ``python scripts/build_denylist.py OUT``. The list is

- the 30,000 most common passwords shipped inside the pinned ``zxcvbn`` package
  (``zxcvbn.frequency_lists``, setup.cfg): a maintained, versioned source installed from
  PyPI like every other dependency, never downloaded from elsewhere at build time;
- the school- and child-specific words of ``slapd-modules/denylist-school.txt``.

One lower-case entry a line, sorted, without duplicates. Entries shorter than 3 characters
are dropped: the module compares whole passwords (8+ characters) and their cores with the
guessable digits and symbols stripped, and a 1-2 character core says nothing. Written
atomically, so a running slapd never reads half a file.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCHOOL_WORDS = HERE.parent / "slapd-modules" / "denylist-school.txt"
MIN_ENTRY = 3


def school_words(path: Path = SCHOOL_WORDS) -> list[str]:
    """The hand-written list: one word a line, '#' comments and blank lines ignored."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        word = line.strip()
        if word and not word.startswith("#"):
            out.append(word)
    return out


def common_passwords() -> list[str]:
    """zxcvbn's password frequency list (most common first)."""
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return list(FREQUENCY_LISTS["passwords"])


def entries() -> list[str]:
    words = {w.strip().lower() for w in [*common_passwords(), *school_words()]}
    return sorted(w for w in words if len(w) >= MIN_ENTRY and "\n" not in w)


def write(out: Path) -> int:
    out.parent.mkdir(parents=True, exist_ok=True)
    words = entries()
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=".denylist.")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write("# mims_pwcheck deny-list: built by scripts/build_denylist.py; do not edit\n")
        fh.write("".join(f"{w}\n" for w in words))
    os.chmod(tmp, 0o644)
    os.replace(tmp, out)
    return len(words)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: build_denylist.py OUT")
    count = write(Path(sys.argv[1]))
    print(f"build_denylist: {count} entries -> {sys.argv[1]}", file=sys.stderr)
