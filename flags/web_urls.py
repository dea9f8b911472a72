from django.urls import path

from flags import web

urlpatterns = [
    path("", web.flag_list, name="flags"),
    path("<str:key>/", web.flag_detail, name="flag"),
    path("<str:key>/<slug:env>/plan/<slug:move>/", web.plan_button, name="flag-plan-move"),
    path("<str:key>/<slug:env>/experiment/", web.experiment_page, name="flag-experiment"),
    path("<str:key>/<slug:env>/<slug:button>/", web.flag_button, name="flag-button"),
]
