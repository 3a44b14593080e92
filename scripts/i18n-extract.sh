#!/usr/bin/env bash
# Update the French catalog from the code and the Jinja2 templates (a developer's step; the test command
# only compiles the catalog). One template of every message (.pot) is built with xgettext from the Python
# files (Django's gettext names) and the templates (`_()` and `ngettext()` calls), then merged into the
# catalog: existing translations are kept, new messages come in empty, gone ones are dropped.
set -euo pipefail
cd "$(dirname "$0")/.."
catalog=locale/fr/LC_MESSAGES/django.po
pot=$(mktemp --suffix=.pot)
trap 'rm -f "$pot" "$pot.py" "$pot.html"' EXIT
find hyperion events -name '*.py' -print0 | sort -z | xargs -0 xgettext --language=Python --from-code=UTF-8 \
    --keyword=_ --keyword=gettext --keyword=gettext_lazy --keyword=ngettext:1,2 --keyword=ngettext_lazy:1,2 \
    --no-location --omit-header -o "$pot.py"
find templates -name '*.html' -o -name '*.txt' | sort | tr '\n' '\0' | xargs -0 xgettext --language=Python \
    --from-code=UTF-8 --keyword=_ --keyword=gettext --keyword=ngettext:1,2 --no-location --omit-header -o "$pot.html"
msgcat --use-first --no-wrap -o "$pot" "$pot.py" "$pot.html"
mkdir -p "$(dirname "$catalog")"
[ -f "$catalog" ] || msginit --no-translator --locale=fr --input="$pot" --output-file="$catalog"
msgmerge --quiet --no-fuzzy-matching --no-wrap --update --backup=none ${I18N_COMPENDIUM:+--compendium="$I18N_COMPENDIUM"} "$catalog" "$pot"
msgattrib --no-obsolete --no-wrap -o "$catalog" "$catalog"
msgfmt --statistics -o /dev/null "$catalog"
