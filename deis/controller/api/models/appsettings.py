"""An app's routing settings (Deis Workflow's AppSettings): maintenance mode and the allow-list.

One row an app, made with it (and by migration 0005 for the apps before it): `maintenance` makes
the router answer every request with 503 and its maintenance page; `whitelist` (Workflow's name)
holds the networks whose clients may use the app, normalised (rules.normal_network), empty for
everybody. Both reach the router through runtime.route_for; `owner` is who changed them last.
"""

from django.conf import settings
from django.db import models
from django.db.models.signals import post_save
from django.dispatch import receiver

from .app import App
from .base import UuidAuditedModel


class AppSettings(UuidAuditedModel):
    app = models.OneToOneField(App, on_delete=models.CASCADE, related_name="appsettings")
    # Who changed them last; a user who leaves does not take an app's settings with them.
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                              related_name="+")
    maintenance = models.BooleanField(default=False)
    whitelist = models.JSONField(default=list, blank=True)  # ["10.0.0.0/8", ...] (JSON: SQLite and PostgreSQL)

    @classmethod
    def of(cls, app: App) -> "AppSettings":
        """The app's settings (made now for an app that has none yet)."""
        return cls.objects.get_or_create(app=app, defaults={"owner_id": app.owner_id})[0]


@receiver(post_save, sender=App, dispatch_uid="appsettings_for_new_app")
def _settings_for_new_app(sender, instance: App, created: bool, raw: bool = False, **kwargs):
    if created and not raw:
        AppSettings.objects.get_or_create(app=instance, defaults={"owner_id": instance.owner_id})
