"""`python -m deis.controller admin_token`: while there is no administrator, print a new one-time
admin token (replacing any earlier one; only its hash is kept, in DATA_DIR/admin_token, mode 0600).
Registering with it (`deis register URL --admin-token TOKEN`) makes that user the admin. Prints
nothing once an admin exists."""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from deis.controller.api import accounts


class Command(BaseCommand):
    help = __doc__

    def handle(self, *args, **options):
        if get_user_model().objects.filter(is_superuser=True).exists():
            accounts.discard_admin_token(settings.ADMIN_TOKEN_FILE)
            return
        self.stdout.write(accounts.issue_admin_token(settings.ADMIN_TOKEN_FILE))
