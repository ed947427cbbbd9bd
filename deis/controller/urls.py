from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from deis.controller.api import views

urlpatterns = [
    path("healthz", views.healthz),
    path("v1/schema/", SpectacularAPIView.as_view(authentication_classes=[], permission_classes=[]),
         name="schema"),
    path("v1/", include("deis.controller.api.urls")),
]

handler500 = "deis.controller.api.exceptions.server_error"
