"""`python -m deis.controller admin USERNAME`: make USERNAME a platform administrator, creating the
account when there is none (its password from a prompt, or the first line of stdin when it is not
a terminal). The operator's way to the first admin (also `deis-platform admin`, `make admin`)."""

import getpass
import sys

from django.conf import settings
from django.contrib.auth import get_user_model, password_validation
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from deis.controller.api import accounts, validators


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--email", default="", help="The new account's email address.")

    def password(self, user) -> str:
        if sys.stdin.isatty():
            password = getpass.getpass(f"password for {user.username}: ")
            if getpass.getpass("password (confirm): ") != password:
                raise CommandError("The passwords differ.")
        else:
            password = sys.stdin.readline().rstrip("\r\n")
        try:
            password_validation.validate_password(password, user=user)
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages))
        return password

    def handle(self, *args, username, email="", **options):
        User = get_user_model()
        with transaction.atomic():
            user = User.objects.filter(username=username).first()
            if user is not None:
                made = False
            else:
                if not validators.USERNAME.match(username):
                    raise CommandError(f"'{username}' is not a valid username.")
                user = User(username=username, email=email)
                user.set_password(self.password(user))
                made = True
            user.is_superuser = user.is_staff = True
            user.save()
        accounts.discard_admin_token(settings.ADMIN_TOKEN_FILE)  # there is an admin now
        self.stdout.write(f"{'Created' if made else 'Promoted'} {username}: a platform administrator now.")
