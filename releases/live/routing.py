from django.urls import path

from releases.live.consumers import BoardConsumer, DeploymentConsumer

websocket_urlpatterns = [
    path("ws/board/", BoardConsumer.as_asgi()),
    path("ws/deployments/<int:deployment_id>/", DeploymentConsumer.as_asgi()),
]
