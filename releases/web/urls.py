from django.contrib.auth import views as auth_views
from django.urls import path

from releases.governance import security
from releases.web import audit, board, deployment, governance, history, release, target

urlpatterns = [
    path(
        "login/",
        auth_views.LoginView.as_view(
            redirect_authenticated_user=True,
            authentication_form=security.ThrottledAuthenticationForm,  # says why when throttled
        ),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", board.board, name="board"),
    path("deployments/", deployment.deployment_list, name="deployments"),
    path("deployments/<int:pk>/", deployment.deployment, name="deployment"),
    path(
        "deployments/<int:pk>/actions/",
        deployment.deployment_actions,
        name="deployment-actions",
    ),
    path(
        "deployments/<int:pk>/<slug:action>/",
        deployment.deployment_action,
        name="deployment-action",
    ),
    path("services/<slug:service>/releases/<str:version>/", release.release, name="release"),
    path(
        "services/<slug:service>/releases/<str:version>/deploy/",
        release.deploy,
        name="release-deploy",
    ),
    path("services/<slug:service>/targets/<slug:env>/", target.target_page, name="target"),
    path(
        "services/<slug:service>/targets/<slug:env>/end-window/",
        target.target_end_window,
        name="target-end-window",
    ),
    path("history/", history.history_page, name="history"),
    path("audit/", audit.audit, name="audit"),
    path("tokens/", governance.tokens_page, name="tokens"),
    path("tokens/<str:prefix>/revoke/", governance.token_revoke, name="token-revoke"),
    path("audit/export.jsonl", audit.audit_export, name="audit-export"),
]
