# Sourced by scripts/test: make sure a PostgreSQL server answers, and set HYPERION_TEST_PG_URL to it.
# The tests create (and drop) their own scratch databases on it; they never touch the others.
pg_answers() {  # host port
    if command -v pg_isready >/dev/null 2>&1; then
        pg_isready -q -h "$1" -p "$2" -U postgres -t 3
    else
        "$PYTHON" - "$1" "$2" <<'PY'
import asyncio, sys, asyncpg
async def main():
    c = await asyncpg.connect(host=sys.argv[1], port=int(sys.argv[2]), user="postgres", database="postgres", timeout=3)
    await c.close()
asyncio.run(main())
PY
    fi
}

if [ -z "${HYPERION_TEST_PG_URL:-}" ]; then
    if pg_answers 127.0.0.1 5432 2>/dev/null; then
        HYPERION_TEST_PG_URL="postgresql://postgres@127.0.0.1:5432/postgres"
    else
        initdb_bin=$(ls /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -n 1 || true)
        if [ -z "$initdb_bin" ]; then
            echo "error: no PostgreSQL answers on 127.0.0.1:5432 and no PostgreSQL binaries are installed" >&2
            exit 1
        fi
        pg_bin=$(dirname "$initdb_bin")
        pg_dir=$(mktemp -d /tmp/hyperion-pg.XXXXXX)
        pg_port=$("$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
        as_pg=()
        if [ "$(id -u)" = 0 ]; then  # PostgreSQL refuses to run as root
            chown postgres: "$pg_dir"
            as_pg=(runuser -u postgres --)
        fi
        echo "==> starting a throw-away PostgreSQL ($pg_bin) on 127.0.0.1:$pg_port"
        "${as_pg[@]}" "$pg_bin/initdb" -D "$pg_dir/data" -U postgres -A trust -E UTF8 >/dev/null
        "${as_pg[@]}" "$pg_bin/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/log" -w \
            -o "-p $pg_port -k $pg_dir -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=off" start >/dev/null
        trap '"${as_pg[@]}" "$pg_bin/pg_ctl" -D "$pg_dir/data" -m fast stop >/dev/null 2>&1; rm -rf "$pg_dir"' EXIT
        HYPERION_TEST_PG_URL="postgresql://postgres@127.0.0.1:$pg_port/postgres"
    fi
fi
export HYPERION_TEST_PG_URL
