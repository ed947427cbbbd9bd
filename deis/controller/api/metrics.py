"""Metrics: an app's requests through the router and what its processes use; every app's router
counters for Prometheus. The numbers come from the logger's files (deis/logger/router_log.py) and
the scheduler's `usage`."""

from django.conf import settings
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from deis.logger import router_log
from deis.scheduler import SchedulerError, get_scheduler

from .permissions import IsAdmin
from .views import app_for

PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class AppMetricsView(APIView):
    @extend_schema(responses={200: dict})
    def get(self, request, id):
        """The app's requests in the last 1, 5 and 15 minutes (`windows`) and the CPU and memory of
        its running processes (`processes`: empty while no engine can tell)."""
        app = app_for(request, id, "view the metrics of")
        answer = router_log.read(settings.DATA_DIR, app.id)
        try:
            answer["processes"] = get_scheduler().usage(app.id)
        except SchedulerError:  # no runtime, or it does not answer: the router's numbers all the same
            answer["processes"] = []
        return Response(answer)


class PrometheusView(APIView):
    """Every app's router counters since its metrics began, in Prometheus' text format."""

    permission_classes = [IsAdmin]

    @extend_schema(responses={(200, "text/plain"): OpenApiResponse(OpenApiTypes.STR)})
    def get(self, request):
        return HttpResponse(router_log.prometheus(settings.DATA_DIR), content_type=PROMETHEUS_CONTENT_TYPE)
