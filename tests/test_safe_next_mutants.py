"""The redirect validator ``safe_next`` at its edges (mutants the redirect tests of
test_portal_defects.py let through): relative targets, the length limit, the first printable
character. Pure: no server, no app."""

from __future__ import annotations

import pytest

from mimsdir.portal.views.common import safe_next


@pytest.mark.parametrize("target", ["evil", "evil.example/x", "x/../y", "?next=/", "#/home"])
def test_a_target_not_starting_with_a_slash_is_refused(target: str) -> None:
    assert safe_next(target, "/home") == "/home"


def test_length_limit_is_512_characters() -> None:
    at_limit = "/" + "a" * 511
    assert safe_next(at_limit, "/home") == at_limit
    assert safe_next(at_limit + "a", "/home") == "/home"


@pytest.mark.parametrize("target", ["/a!b", "/teacher?x=1&y=!", "/~x"])
def test_printable_characters_are_kept(target: str) -> None:
    assert safe_next(target, "/home") == target


@pytest.mark.parametrize("target", [None, "", "/a b", "/a\x7fb", "/a\\b", "//evil"])
def test_refused_targets_give_the_default(target: str | None) -> None:
    assert safe_next(target, "/home") == "/home"
