#!/usr/bin/env bash
# Update the French catalog from the code and the Jinja2 templates (a developer's step; the test command
# only compiles the catalog). Babel extracts every message into a template (.pot) as locale/babel.cfg says:
# Python with Django's gettext names, the templates with Jinja2's own parser (so `_()` inside an HTML
# attribute counts too). The catalog is then updated from it: existing translations are kept, new messages
# come in empty, gone ones are dropped, nothing is guessed (no fuzzy matching). tests/plumbing/test_i18n.py runs
# the same extraction and fails on any message without a French translation.
set -euo pipefail
source "$(dirname "$0")/bootstrap.sh"
catalog=locale/fr/LC_MESSAGES/django.po
pot=$(mktemp --suffix=.pot)
trap 'rm -f "$pot"' EXIT
pybabel() { "$PYTHON" -m babel.messages.frontend "$@"; }
pybabel --quiet extract -F locale/babel.cfg --no-location --omit-header --no-wrap -o "$pot" .
mkdir -p "$(dirname "$catalog")"
if [ ! -f "$catalog" ]; then
    pybabel --quiet init -i "$pot" -o "$catalog" -l fr --no-wrap
fi
pybabel --quiet update -i "$pot" -o "$catalog" -l fr --no-wrap --no-fuzzy-matching --ignore-obsolete \
    --ignore-pot-creation-date
pybabel compile --statistics -i "$catalog" -o /dev/null -l fr
