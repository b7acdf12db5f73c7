# Shared set-up steps for ./run, ./test and .ci/run. Sourced, not run.

setup_python() {
    # Creates .venv and installs Seen (with test extras when asked); quiet when nothing changed.
    local extras="${1:-}"
    local py="${PYTHON:-python3}"
    if [ ! -x .venv/bin/python ]; then
        if ! "$py" -c "import ensurepip, venv" 2>/dev/null; then
            # Debian's own python3 ships venv and pip apart.
            as_root apt-get update -qq
            DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq python3-venv >/dev/null
        fi
        "$py" -m venv .venv
        .venv/bin/pip install -q --upgrade pip
    fi
    local stamp=".venv/.installed-${extras:-base}"
    if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
        if [ -n "$extras" ]; then
            .venv/bin/pip install -q -e ".[${extras}]"
        else
            .venv/bin/pip install -q -e .
        fi
        touch "$stamp"
    fi
}

setup_dfe_validators() {
    # The DfE's own validators of the statutory returns (MIT, on PyPI) pin old pandas and numpy: they live in a
    # virtualenv of their own, never in Seen's. tests/test_returns*.py run them through tests/dfe_validate.py.
    local want="csc-validator-be-903==0.1.17 csc-validator-be-cin==0.1.13"
    local stamp=".venv-dfe/.installed-$(echo "$want" | tr ' =' '_-')"
    if [ ! -f "$stamp" ]; then
        "${PYTHON:-python3}" -m venv .venv-dfe
        # shellcheck disable=SC2086
        .venv-dfe/bin/pip install -q $want && touch "$stamp" \
            || echo "The DfE validators could not be installed; the tests that run them will say so" >&2
    fi
}

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

setup_chromium() {
    # Debian's chromium for the browser tests; Playwright never downloads a browser here.
    if [ ! -x /usr/bin/chromium ]; then
        as_root apt-get update -qq
        DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq chromium fonts-dejavu-core >/dev/null
    fi
}

setup_postgres() {
    # The storage suite runs against the real PostgreSQL at 127.0.0.1:5432 (trust auth on loopback).
    if ! command -v pg_isready >/dev/null; then
        # A machine without PostgreSQL: Debian's, with loopback connections trusted (a test machine only).
        as_root apt-get update -qq
        DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq postgresql >/dev/null
        local hba
        hba="$(ls /etc/postgresql/*/main/pg_hba.conf | head -n 1)"
        as_root sed -i '1i host all all 127.0.0.1/32 trust' "$hba"
    fi
    if ! pg_isready -q -h 127.0.0.1 -p 5432; then
        if [ -d /etc/postgresql ]; then
            as_root pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start \
                || echo "PostgreSQL did not start; the tests that need it will say so" >&2
        fi
        for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
    fi
    if ! psql -h 127.0.0.1 -U postgres -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'test'" 2>/dev/null \
            | grep -q 1; then
        psql -h 127.0.0.1 -U postgres -d postgres -qc "CREATE DATABASE test" 2>/dev/null || true
    fi
}

setup_redis() {
    # Redis at 127.0.0.1:6379 for the test of two app processes sharing sessions (NiceGUI's Redis storage).
    if redis_answers; then return; fi
    if ! command -v redis-server >/dev/null; then
        as_root apt-get update -qq
        DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq redis-server >/dev/null
    fi
    redis_answers || redis-server --bind 127.0.0.1 --port 6379 --daemonize yes --save "" >/dev/null \
        || echo "Redis did not start; the tests that need it will say so" >&2
    for _ in $(seq 1 20); do redis_answers && break; sleep 0.5; done
}

redis_answers() {
    # A PING in Redis's protocol over bash's /dev/tcp, in a subshell (a refused connection ends only that).
    ( reply=""
      exec 3<>/dev/tcp/127.0.0.1/6379 && printf 'PING\r\n' >&3 && read -r -t 2 reply <&3
      [[ "$reply" == +PONG* ]] ) 2>/dev/null
}

