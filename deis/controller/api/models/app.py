"""An app: its owner, collaborators and desired process counts."""

from django.conf import settings
from django.db import models, transaction

from .base import UuidAuditedModel, app_url


class App(UuidAuditedModel):
    id = models.SlugField(max_length=63, unique=True)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="apps")
    # Desired process counts, {"web": 2}: what the scheduler converges to.
    structure = models.JSONField(default=dict, blank=True)
    collaborators = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="shared_apps", blank=True)

    class Meta:
        ordering = ["id"]

    def __str__(self):
        return self.id

    @property
    def url(self) -> str:
        return app_url(self.id)

    def can_use(self, user) -> bool:
        """Owner, collaborators and admins may deploy, configure, scale and inspect."""
        return self.can_manage(user) or self.collaborators.filter(pk=user.pk).exists()

    def can_manage(self, user) -> bool:
        """Only the owner and admins may destroy, transfer or change sharing."""
        return user.is_superuser or self.owner_id == user.pk

    def current_release(self):
        return self.releases.filter(failed=False).order_by("-version").first()

    def latest_release(self):
        return self.releases.order_by("-version").first()


def lock_app(app: App) -> App:
    """Take the app's row lock for a read-modify-write (PostgreSQL; SQLite locks at BEGIN IMMEDIATE)."""
    assert transaction.get_connection().in_atomic_block
    return App.objects.select_for_update().get(pk=app.pk)
