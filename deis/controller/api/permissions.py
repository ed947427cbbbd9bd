"""Who may do what: anonymous, other users, collaborators, the owner and admins."""

from rest_framework import permissions
from rest_framework.exceptions import AuthenticationFailed, PermissionDenied
from django.conf import settings
from django.utils.crypto import constant_time_compare


class IsAdmin(permissions.BasePermission):
    message = "Only platform administrators may do this."

    def has_permission(self, request, view):
        return bool(request.user and request.user.is_superuser)


class IsBuilder(permissions.BasePermission):
    """Builder hooks authenticate with the shared builder key instead of a user token."""

    def has_permission(self, request, view):
        given = request.headers.get("X-Deis-Builder-Auth", "")
        if not given:
            raise AuthenticationFailed("Builder hooks need the X-Deis-Builder-Auth header.")
        if not constant_time_compare(given, settings.BUILDER_KEY):
            raise PermissionDenied("The builder key is not valid.")
        return True


def deny(user, action: str, app) -> PermissionDenied:
    return PermissionDenied(f"You may not {action} {app.id} (ask its owner, {app.owner.username}).")
