"""Who may do what: anonymous, other users, collaborators, the owner and admins."""

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.utils.crypto import constant_time_compare
from rest_framework import authentication, permissions
from rest_framework.exceptions import AuthenticationFailed, PermissionDenied


class IsAdmin(permissions.BasePermission):
    message = "Only platform administrators may do this."

    def has_permission(self, request, view):
        return bool(request.user and request.user.is_superuser)


class BuilderKeyAuthentication(authentication.BaseAuthentication):
    """Builder hooks authenticate with the shared builder key instead of a user token."""

    header = "X-Deis-Builder-Auth"

    def authenticate(self, request):
        given = request.headers.get(self.header, "")
        if not given:
            return None
        if not constant_time_compare(given, settings.BUILDER_KEY):
            raise AuthenticationFailed("The builder key is not valid.")
        return AnonymousUser(), "builder"

    def authenticate_header(self, request):
        return self.header


class IsBuilder(permissions.BasePermission):
    message = "Builder hooks need the X-Deis-Builder-Auth header."

    def has_permission(self, request, view):
        return request.auth == "builder"


def deny(user, action: str, app) -> PermissionDenied:
    return PermissionDenied(f"You may not {action} {app.id} (ask its owner, {app.owner.username}).")
