"""A TLS certificate and its key, served for the hosts it covers."""

from django.conf import settings
from django.db import models

from .base import UuidAuditedModel


class Certificate(UuidAuditedModel):
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="certs")
    common_name = models.CharField(max_length=253, unique=True)
    certificate = models.TextField()
    key = models.TextField()
    expires = models.DateTimeField()

    class Meta:
        ordering = ["common_name"]
