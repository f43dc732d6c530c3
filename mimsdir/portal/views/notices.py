"""Short messages shown once after a redirect, by code (the code travels in the session,
the words are chosen in the reader's language)."""

from __future__ import annotations

from flask_babel import gettext as _

CODES = frozenset({"timeout", "signed_out", "password_changed", "questions_saved", "unlocked",
                   "unlocked_inactive", "ended", "not_yours", "refused"})


def notice_message(code: str | None) -> str | None:
    if code not in CODES:  # most pages: no notice, nothing to translate
        return None
    messages = {
        "timeout": _("You were signed out because you were away for a while. Please sign in "
                     "again."),
        "signed_out": _("You are signed out. See you next time!"),
        "password_changed": _("Your password is changed. Remember it and keep it secret."),
        "questions_saved": _("Your questions and answers are saved."),
        "unlocked": _("Unlocked. The student can sign in again."),
        "unlocked_inactive": _("Unlocked, but this student's account is not active, so they "
                               "still cannot sign in. Please ask ICT."),
        "ended": _("You were signed out. Please sign in again."),
        "not_yours": _("That student is not in your class."),
        "refused": _("The directory did not allow this change."),
    }
    return messages[code]
