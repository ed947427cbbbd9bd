"""`python -m deis.controller <django command>`: the controller's manage.py."""

import os
import sys

from django.core.management import execute_from_command_line


def main():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "deis.controller.settings")
    execute_from_command_line([sys.argv[0] + " (deis.controller)"] + sys.argv[1:])


if __name__ == "__main__":
    main()
