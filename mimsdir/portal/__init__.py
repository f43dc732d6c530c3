"""The MIMS portal: sign in, forced password change, challenge questions, self-service
password reset, and a teacher view. A thin Flask app over the directory.

``create_app(cfg)`` builds it (one blueprint per flow); ``mimsdir sspr serve`` runs it under
waitress. Every write goes to slapd, which enforces the password policy and the ACLs.
"""

from __future__ import annotations

from flask import Flask

from mimsdir.config import Config


def create_app(cfg: Config, *, testing: bool = False) -> Flask:
    from mimsdir.portal import events, i18n, metrics, security
    from mimsdir.portal.views import account, auth, forgot, ops, teacher

    app = Flask(__name__)
    app.config["MIMS"] = cfg
    app.config["TESTING"] = testing
    events.init(app, cfg)
    security.init(app, cfg)
    i18n.init(app, cfg)
    metrics.init(app)
    from mimsdir.portal.oidc import provider as oidc_provider
    from mimsdir.portal.oidc import views as oidc_views
    from mimsdir.portal.saml import views as saml_views

    for bp in (auth.bp, account.bp, forgot.bp, teacher.bp, ops.bp, oidc_views.bp,
               saml_views.bp):
        app.register_blueprint(bp)
    oidc_provider.init(app, cfg)
    saml_views.init(app, cfg)
    for name in oidc_views.MACHINE_ENDPOINTS:  # applications' servers: no CSRF token
        security.csrf.exempt(app.view_functions[name])
    for name in saml_views.CROSS_SITE_POSTS:  # SPs' HTTP-POST binding: signed messages
        security.csrf.exempt(app.view_functions[name])
    from mimsdir.portal.views.notices import notice_message

    app.add_template_global(notice_message)

    @app.context_processor
    def person_in_templates() -> dict[str, object]:
        from mimsdir.portal.sessions import who

        return {"signed_in_person": who()}

    return app
