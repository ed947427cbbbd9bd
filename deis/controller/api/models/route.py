"""What the router should serve of an app, and how far the router has got."""

from django.db import models


class AppRoute(models.Model):
    """The processes the deployer routes an app to, and the router's answer.

    The deployer (and the API, for hosts and certificates) bump `generation` with every change;
    the router's reconciler (`python -m deis.controller route`) serves the app's route - these
    upstreams, and hosts, certificates and settings as the database has them - then writes the
    generation it served to `served` (Kubernetes' observedGeneration), or why not to `problem`.
    Keyed by the app's name, not a foreign key: a destroyed app's row goes once its route did."""

    app_id = models.SlugField(max_length=63, primary_key=True)
    upstreams = models.JSONField(default=list, blank=True)  # [[address, port]]: healthy web processes
    backups = models.JSONField(default=list, blank=True)  # used only when no upstream answers
    generation = models.PositiveBigIntegerField(default=1)
    served = models.PositiveBigIntegerField(default=0)
    served_at = models.DateTimeField(null=True, blank=True)
    problem = models.TextField(blank=True)  # the router's refusal of the newest generation
    updated = models.DateTimeField(auto_now=True)
