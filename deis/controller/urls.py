from django.urls import include, path

from deis.controller.api import views


def schema(request, *args, **kwargs):
    """The OpenAPI schema (deis/controller/api/schema.py, loaded at its first request)."""
    from deis.controller.api.schema import view

    return view(request, *args, **kwargs)


urlpatterns = [
    path("healthz", views.healthz),
    path("v1/schema/", schema, name="schema"),
    path("v1/", include("deis.controller.api.urls")),
]

handler500 = "deis.controller.api.exceptions.server_error"
