#!/usr/bin/env bash
# Update the French catalog from the code and the Jinja2 templates (a developer's step; the test command
# only compiles the catalog). Python files: Django's makemessages. Templates: xgettext reading `_()` and
# `ngettext()` calls, which is how the Jinja2 templates spell translations.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
mkdir -p locale/fr/LC_MESSAGES
pot=$(mktemp --suffix=.pot)
"$PY" manage.py makemessages -l fr --ignore='.venv/*' --ignore='tests/*' --ignore='bench/*' --no-location -v 0
find templates -name '*.html' -print0 | sort -z | xargs -0 xgettext --language=Python --from-code=UTF-8 \
    --keyword=_ --keyword=gettext --keyword=ngettext:1,2 --no-location --omit-header -o "$pot"
msgcat --use-first --no-location -o locale/fr/LC_MESSAGES/django.po locale/fr/LC_MESSAGES/django.po "$pot"
rm -f "$pot"
msgattrib --no-obsolete -o locale/fr/LC_MESSAGES/django.po locale/fr/LC_MESSAGES/django.po
echo "catalog: locale/fr/LC_MESSAGES/django.po ($(grep -c '^msgid' locale/fr/LC_MESSAGES/django.po) strings)"
