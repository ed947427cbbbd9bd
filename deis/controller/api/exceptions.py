"""Errors as `{"detail": "..."}` JSON with the contract's status codes; never a 500 for bad input."""

from django.core.exceptions import RequestDataTooBig, ValidationError as DjangoValidationError
from django.http import JsonResponse
from django.db import IntegrityError
from rest_framework import status
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from deis.scheduler import DeployError, SchedulerError

DEPLOY_LOG_LINES = 20  # of the new release's processes, in the answer to a failed deploy


class Conflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with the current state."


class TooMany(APIException):
    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    default_detail = "Too many at once; try again shortly."


class RuntimeUnavailable(APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "The runtime could not do this."


def body_too_large(limit: int) -> str:
    return f"The request body is larger than the limit of {limit} bytes."


def exception_handler(exc, context):
    if isinstance(exc, DeployError) and exc.logs:
        # The person deploying sees why: the reason, then the new processes' last lines.
        lines = [str(exc), "Last lines of its output:", *("  " + line for line in exc.logs[-DEPLOY_LOG_LINES:])]
        exc = RuntimeUnavailable("\n".join(lines))
    elif isinstance(exc, SchedulerError):
        exc = RuntimeUnavailable(str(exc))
    elif isinstance(exc, RequestDataTooBig):
        from django.conf import settings
        return Response({"detail": body_too_large(settings.MAX_BODY_BYTES)},
                        status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
    elif isinstance(exc, DjangoValidationError):
        exc = ValidationError({"detail": exc.messages})
    elif isinstance(exc, IntegrityError):
        # Two requests raced for the same unique name; the loser is told so.
        exc = Conflict("This conflicts with an object created at the same moment; try again.")
    return drf_exception_handler(exc, context)


def server_error(request, *args, **kwargs):
    """A bug is still answered in JSON, like every other error (Django's default is an HTML page)."""
    return JsonResponse({"detail": "The controller hit an internal error; it has been logged."}, status=500)
