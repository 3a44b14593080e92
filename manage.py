#!/usr/bin/env python
"""Django's command-line utility for the site (migrate, runserver, loaddemo, createstaff, ...), without
Django's ORM commands (events/management/utility.py)."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hyperion.settings")
    from events.management.utility import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
