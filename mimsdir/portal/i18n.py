"""Four languages (English, Chinese, Malay, Tamil) through gettext catalogs and Flask-Babel.

The language comes from the switch on every page (kept in the session), else the browser's
Accept-Language, else English.
"""

from __future__ import annotations

from pathlib import Path

from flask import Flask, redirect, request, session, url_for
from flask_babel import Babel

from mimsdir.config import Config

NAMES = {"en": "English", "zh": "中文", "ms": "Bahasa Melayu", "ta": "தமிழ்"}
HTML_LANG = {"en": "en", "zh": "zh-Hans", "ms": "ms", "ta": "ta"}
TRANSLATIONS = Path(__file__).resolve().parent / "translations"


def init(app: Flask, cfg: Config) -> None:
    languages = [lang for lang in cfg.portal.languages if lang in NAMES]

    def select() -> str:
        chosen = session.get("lang")
        if chosen in languages:
            return str(chosen)
        return request.accept_languages.best_match(languages) or "en"

    app.config["BABEL_TRANSLATION_DIRECTORIES"] = str(TRANSLATIONS)
    Babel(app, locale_selector=select)

    @app.context_processor
    def languages_in_templates() -> dict[str, object]:
        current = select()
        return {"languages": [(code, NAMES[code]) for code in languages],
                "current_lang": current, "html_lang": HTML_LANG.get(current, "en")}

    @app.get("/lang/<code>")
    def switch_language(code: str):  # type: ignore[no-untyped-def]
        if code in languages:
            session["lang"] = code
        from mimsdir.portal.views.common import safe_next

        # Only a path on this site: never an open redirect.
        return redirect(safe_next(request.args.get("next"), url_for("auth.start")))
