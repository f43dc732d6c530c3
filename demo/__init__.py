"""The demo applications that ``make demo`` registers and runs beside the portal, so a
newcomer can try single sign-on and single sign-out with the demo school's accounts.

Each is a :class:`demo.common.DemoApp` listed in :func:`demo.catalogue.demo_apps`; ``python -m
demo`` registers them (idempotently), serves one, and prints how to try them. Demo only: none
of this is installed with the package or used by the portal.
"""
