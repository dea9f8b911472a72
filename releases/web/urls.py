from django.contrib.auth import views as auth_views
from django.urls import path

from releases import (
    security,
    views_audit,
    views_board,
    views_deployment,
    views_governance,
    views_history,
    views_release,
)

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
    path("", views_board.board, name="board"),
    path("deployments/", views_deployment.deployment_list, name="deployments"),
    path("deployments/<int:pk>/", views_deployment.deployment, name="deployment"),
    path(
        "deployments/<int:pk>/actions/",
        views_deployment.deployment_actions,
        name="deployment-actions",
    ),
    path(
        "deployments/<int:pk>/<slug:action>/",
        views_deployment.deployment_action,
        name="deployment-action",
    ),
    path("services/<slug:service>/releases/<str:version>/", views_release.release, name="release"),
    path(
        "services/<slug:service>/releases/<str:version>/deploy/",
        views_release.deploy,
        name="release-deploy",
    ),
    path("history/", views_history.history_page, name="history"),
    path("audit/", views_audit.audit, name="audit"),
    path("tokens/", views_governance.tokens_page, name="tokens"),
    path("tokens/<str:prefix>/revoke/", views_governance.token_revoke, name="token-revoke"),
    path("audit/export.jsonl", views_audit.audit_export, name="audit-export"),
]
