from django.contrib.auth import views as auth_views
from django.urls import path

from releases import views

urlpatterns = [
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", views.board, name="board"),
    path("deployments/", views.deployment_list, name="deployments"),
    path("deployments/<int:pk>/", views.deployment, name="deployment"),
    path(
        "deployments/<int:pk>/<slug:action>/",
        views.deployment_action,
        name="deployment-action",
    ),
    path("services/<slug:service>/releases/<str:version>/", views.release, name="release"),
]
