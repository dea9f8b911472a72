from django.urls import path

from notifications import views
from notifications.chatops import views as chatops

urlpatterns = [
    path("notifications/", views.page, name="notifications"),
    path("notifications/channels/new/", views.channel_new, name="notifications-channel-new"),
    path(
        "notifications/channels/<int:pk>/edit/",
        views.channel_edit,
        name="notifications-channel-edit",
    ),
    path(
        "notifications/channels/<int:pk>/delete/",
        views.channel_delete,
        name="notifications-channel-delete",
    ),
    path("notifications/channels/<int:pk>/test/", views.test, name="notifications-test"),
    path("notifications/channels/<int:pk>/enable/", views.enable, name="notifications-enable"),
    path("notifications/deliveries/<int:pk>/retry/", views.retry, name="notifications-retry"),
    path("notifications/rules/", views.add_rule, name="notifications-rule-add"),
    path(
        "notifications/rules/<int:pk>/delete/", views.delete_rule, name="notifications-rule-delete"
    ),
    path("notifications/slack-links/", views.add_link, name="notifications-link-add"),
    path(
        "notifications/slack-links/<int:pk>/delete/",
        views.delete_link,
        name="notifications-link-delete",
    ),
    path("notifications/slack-links/code/", views.link_code, name="notifications-link-code"),
    path("chatops/slack/commands", chatops.slash_command, name="slack-commands"),
    path("chatops/slack/interactivity", chatops.interactivity, name="slack-interactivity"),
]
