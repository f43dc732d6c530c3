"""The demo applications, in the order ``make demo`` starts and lists them.

To add one (the SAML service provider): a module with a ``DEMO = DemoApp(...)``
(``demo/common.py`` says what each field is for), imported and listed here. ``make demo``
then registers it, starts it (``scripts/demo_apps.sh``), prints its lines, and ``make down``
stops it; nothing else needs to change.
"""

from __future__ import annotations

from demo.common import DemoApp


def demo_apps() -> list[DemoApp]:
    from demo import learning_space

    return [learning_space.DEMO]
