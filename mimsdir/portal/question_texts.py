"""The built-in challenge questions, marked for translation.

The catalogue lives in ``mimsdir.challenge.DEFAULT_QUESTIONS`` (plain strings, also printed on
English cards); the portal translates them at display time with ``_(text)``. These literal
calls exist so ``pybabel extract`` puts them in the catalogs; a test keeps the two lists equal.
Questions configured in ``qna.questions`` are shown as written.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _

TEXTS = (
    _("What is the name of your first soft toy?"),
    _("What is the name of your kindergarten teacher?"),
    _("What is the name of your best friend in kindergarten?"),
    _("Where did you go for your first holiday?"),
    _("What is the name of your youngest cousin?"),
    _("What is the name of your favourite uncle or aunt?"),
    _("What food does your family cook on special days?"),
    _("What is the name of your favourite bedtime story?"),
    _("What did your family call you when you were a baby?"),
    _("What snack do you like to eat at your grandparents' home?"),
    _("What was the first film you watched at the cinema?"),
    _("What game does your family like to play together?"),
)
