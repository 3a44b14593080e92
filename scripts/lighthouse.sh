#!/usr/bin/env bash
# Lighthouse (mobile) on the pages students open most: the home, an event page, the calendar and My events, each
# as a visitor and as a logged-in student, against the real server with the production settings and the demo
# data. Prints a table of the four categories and writes it to bench/results/lighthouse.md.
#
# Needs Node.js and npm (Lighthouse comes from the npm registry into .cache/lighthouse; it downloads no browser)
# and Debian's chromium (scripts/system-packages.sh with HYPERION_BENCH=1 installs it). `make lighthouse`.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=.venv/bin/python
PORT=${LIGHTHOUSE_PORT:-8765}
CHROME=${CHROME_PATH:-/usr/bin/chromium}
tool=.cache/lighthouse
work=$(mktemp -d)
trap 'kill "$server" 2>/dev/null || true; rm -rf "$work"' EXIT

if [ ! -x "$tool/node_modules/.bin/lighthouse" ]; then
  echo "==> installing Lighthouse 12 (npm) into $tool"
  mkdir -p "$tool"
  (cd "$tool" && npm install --silent --no-audit --no-fund lighthouse@12 >/dev/null)
fi

# The production settings (DEBUG off), on plain HTTP on loopback, with a database of its own.
export DEBUG=false ALLOWED_HOSTS=127.0.0.1 DATABASE_URL="sqlite+aiosqlite:///$work/demo.sqlite3" MEDIA_ROOT="$work/media"
export SECRET_KEY="lighthouse-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
export SECURE_SSL_REDIRECT=false SESSION_COOKIE_SECURE=false CSRF_COOKIE_SECURE=false
echo "==> demo data"
"$PYTHON" manage.py migrate -v 0
"$PYTHON" manage.py loaddemo >/dev/null
"$PYTHON" manage.py runserver "127.0.0.1:$PORT" --noreload >"$work/server.log" 2>&1 &
server=$!
for _ in $(seq 100); do curl -fs -o /dev/null "http://127.0.0.1:$PORT/healthz" && break; sleep 0.2; done

# An event to come, and a logged-in student's session (a demo student with registrations).
read -r slug token < <("$PYTHON" - <<'EOF'
import asyncio, os
import django
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hyperion.settings")
django.setup()
from sqlalchemy import func, select
from events.accounts import auth
from events.models import Event, EventStatus, Registration
from hyperion import db

async def main():
    async with db.read_session() as session:
        # The soonest with a poster (the demo gives its soonest events one): its page's largest picture.
        slug = (await session.execute(select(Event.slug).where(Event.status == EventStatus.APPROVED,
                Event.starts_at > func.now(), Event.poster.is_not(None)).order_by(Event.starts_at).limit(1))
                ).scalar_one()
        user_id = (await session.execute(select(Registration.user_id).order_by(Registration.id).limit(1))).scalar_one()
    async with db.write_session() as session:
        print(slug, await auth.session_create(session, user_id=user_id))

asyncio.run(main())
EOF
)

report=bench/results/lighthouse.md
{
  echo "# Lighthouse, mobile ($(date -u +%Y-%m-%d), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?'))"
  echo
  echo "scripts/lighthouse.sh: the production settings, the demo data, one uvicorn worker on loopback."
  echo
  echo "| page | who | performance | accessibility | best practices | SEO |"
  echo "|---|---|---|---|---|---|"
} >"$report"
for page in "home /" "event /events/$slug/" "calendar /calendar/" "my-events /me/events/"; do
  set -- $page
  for who in visitor student; do
    [ "$1" = my-events ] && [ "$who" = visitor ] && continue  # My events is a student's page only
    extra=()
    [ "$who" = student ] && extra=(--extra-headers "{\"Cookie\": \"hyperion_session=$token\"}")
    CHROME_PATH=$CHROME "$tool/node_modules/.bin/lighthouse" "http://127.0.0.1:$PORT$2" --quiet \
      --chrome-flags="--headless=new --no-sandbox" --form-factor=mobile \
      --only-categories=performance,accessibility,best-practices,seo --output=json \
      --output-path="$work/$1-$who.json" "${extra[@]}" >/dev/null 2>&1
    "$PYTHON" - "$work/$1-$who.json" "$1" "$who" >>"$report" <<'EOF'
import json, sys
result = json.load(open(sys.argv[1]))
scores = [round(result["categories"][name]["score"] * 100)
          for name in ("performance", "accessibility", "best-practices", "seo")]
print(f"| {sys.argv[2]} | {sys.argv[3]} | " + " | ".join(map(str, scores)) + " |")
EOF
  done
done
cat "$report"
