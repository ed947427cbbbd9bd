"""The OpenAPI schema the controller serves at /v1/schema/, drf_spectacular's.

Imported at the first request for it (deis/controller/urls.py): drf_spectacular's generator imports
django.test and DRF's test client, about 5 MB of every API worker, which most never need."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.views import SpectacularAPIView

from .permissions import BuilderKeyAuthentication


class BuilderKeyScheme(OpenApiAuthenticationExtension):
    """Describes the builder key in the schema."""

    target_class = BuilderKeyAuthentication
    name = "builderKey"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "header", "name": BuilderKeyAuthentication.header}


view = SpectacularAPIView.as_view(authentication_classes=[], permission_classes=[])
