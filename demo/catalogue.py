"""The demo applications, in the order ``make demo`` starts and lists them.

The learning space (OpenID Connect) and the media library (SAML). To add one: a module with
a ``DEMO = DemoApp(...)`` (``demo/common.py`` says what each field is for), imported and
listed here. ``make demo``
then registers it, starts it (``scripts/demo_apps.sh``), prints its lines, and ``make down``
stops it; nothing else needs to change.
"""

from __future__ import annotations

from demo.common import DemoApp


def demo_apps() -> list[DemoApp]:
    from demo import learning_space, media_library

    return [learning_space.DEMO, media_library.DEMO]
