"""What every model shares: a uuid key and created/updated stamps, as the v1 API shows them."""

import uuid

from django.conf import settings
from django.db import models


def app_url(app_id: str) -> str:
    """Where the router serves an app: `<app>.<platform domain>`."""
    return f"{app_id}.{settings.PLATFORM_DOMAIN}"


class UuidAuditedModel(models.Model):
    """Every object carries a uuid and created/updated stamps, as the v1 API shows them."""

    uuid = models.UUIDField(default=uuid.uuid4, primary_key=True, editable=False)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True
