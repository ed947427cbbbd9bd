"""Token authentication whose tokens may expire (DEIS_TOKEN_TTL seconds after they are made)."""

from django.conf import settings
from django.utils import timezone
from rest_framework.authentication import TokenAuthentication
from rest_framework.exceptions import AuthenticationFailed

from .accounts import token_expired


class ExpiringTokenAuthentication(TokenAuthentication):
    """DRF's `Authorization: token <key>`, refused with 401 once the token is older than TOKEN_TTL."""

    def authenticate_credentials(self, key):
        user, token = super().authenticate_credentials(key)
        if token_expired(token.created, settings.TOKEN_TTL, timezone.now()):
            raise AuthenticationFailed("token expired, log in again")
        return user, token
