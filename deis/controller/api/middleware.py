"""Request/response plumbing every answer shares: API version headers and the body size limit."""

from django.conf import settings
from django.http import JsonResponse

from deis import API_VERSION, __version__

from .exceptions import body_too_large


class APIVersionMiddleware:
    """Every answer names the API version (v1 clients compare and warn) and the platform version."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response["DEIS_API_VERSION"] = API_VERSION
        response["X_DEIS_API_VERSION"] = API_VERSION
        response["DEIS_PLATFORM_VERSION"] = __version__
        return response


class BodySizeLimitMiddleware:
    """Answer 413 before reading a body whose declared length is over the limit."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return JsonResponse({"detail": "The Content-Length header is not a number."}, status=400)
        if length > settings.MAX_BODY_BYTES:
            return JsonResponse({"detail": body_too_large(settings.MAX_BODY_BYTES)}, status=413)
        return self.get_response(request)
