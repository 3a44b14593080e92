# Sourced by scripts/test: Debian packages the tests drive (PostgreSQL client and server binaries, and
# later Chromium and PgBouncer). Installed only when missing, and only where apt-get can run.
missing=()
command -v psql >/dev/null 2>&1 || missing+=(postgresql-client)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "==> apt-get install ${missing[*]}"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    else
        echo "warning: missing system packages: ${missing[*]} (install them with apt-get)" >&2
    fi
fi
