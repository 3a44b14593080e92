# Sourced by scripts/test and bench/run: the Debian packages the tests drive, installed only when missing
# (and only where apt-get can run): PostgreSQL (client and server binaries), PgBouncer, Debian's Chromium
# for the browser tests (Playwright's own browser download cannot work here), and gettext for the
# catalogs; with HYPERION_BENCH=1 (bench/run) also wrk, the benchmark's load generator.
missing=()
command -v psql >/dev/null 2>&1 || missing+=(postgresql-client)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
command -v pgbouncer >/dev/null 2>&1 || [ -x /usr/sbin/pgbouncer ] || missing+=(pgbouncer)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v msgfmt >/dev/null 2>&1 || missing+=(gettext)
if [ "${HYPERION_BENCH:-}" = 1 ]; then command -v wrk >/dev/null 2>&1 || missing+=(wrk); fi
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "==> apt-get install ${missing[*]}"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    else
        echo "warning: missing system packages: ${missing[*]} (install them with apt-get)" >&2
    fi
fi
