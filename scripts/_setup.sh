# Shared by scripts/run, scripts/test and .ci/run: make a fresh machine ready.
# Needs only Python >= 3.11; installs the rest (and redis-server for the tests).

PYTHON="${PYTHON:-python3}"
VENV="${VENV:-.venv}"

ensure_venv() {
    if [ ! -x "$VENV/bin/python" ]; then
        echo "==> creating virtualenv $VENV"
        "$PYTHON" -m venv "$VENV"
        "$VENV/bin/python" -m pip install --quiet --upgrade pip
    fi
    # Reinstall only when the dependency list changed.
    local stamp="$VENV/.lyceum-installed"
    local wanted
    wanted="$(sha256sum pyproject.toml | cut -d' ' -f1)"
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$wanted" ]; then
        echo "==> installing Lyceum and its dependencies into $VENV"
        "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e ".[dev]"
        echo "$wanted" > "$stamp"
    fi
}

ensure_redis() {
    if command -v redis-server >/dev/null 2>&1; then
        return
    fi
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
        echo "==> installing redis-server (tests exercise real Redis)"
        apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
    else
        echo "redis-server is required by the tests: install it (e.g. sudo apt-get install redis-server)" >&2
        exit 1
    fi
}

ensure_poppler() {
    # pdftotext and pdftoppm: the certificate tests read rendered PDFs back.
    if command -v pdftoppm >/dev/null 2>&1 && command -v pdftotext >/dev/null 2>&1; then
        return
    fi
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
        echo "==> installing poppler-utils (certificate rendering tests)"
        apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq poppler-utils >/dev/null
    else
        echo "poppler-utils is required by the tests: install it (e.g. sudo apt-get install poppler-utils)" >&2
        exit 1
    fi
}

ensure_chromium() {
    # The browser tests drive Debian's chromium through Playwright (no browser download).
    if command -v chromium >/dev/null 2>&1; then
        return
    fi
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
        echo "==> installing chromium (browser tests)"
        apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium --no-install-recommends \
            fonts-liberation >/dev/null
    else
        echo "chromium is required by the browser tests: install it (e.g. sudo apt-get install chromium)" >&2
        exit 1
    fi
}

ensure_kubectl() {
    # `kubectl kustomize` renders deploy/kubernetes for tests/deploy (any kubectl >= 1.14
    # will do: one already installed, e.g. from Kubernetes' own apt repository, is kept).
    if command -v kubectl >/dev/null 2>&1 && kubectl kustomize --help >/dev/null 2>&1; then
        return
    fi
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
        echo "==> installing kubernetes-client (kubectl kustomize, Kubernetes manifest tests)"
        apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kubernetes-client >/dev/null
    else
        echo "kubectl is required by the Kubernetes manifest tests: install it (e.g. sudo apt-get install kubernetes-client)" >&2
        exit 1
    fi
}

ensure_promtool() {
    # promtool checks and unit-tests deploy/prometheus/alerts.yml. It comes with Debian's
    # prometheus package, whose install also tries to start the Prometheus service:
    # where that cannot work (a container without an init system) the install reports
    # an error after unpacking promtool, which is all the tests need.
    if command -v promtool >/dev/null 2>&1; then
        return
    fi
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
        echo "==> installing prometheus (promtool, alert rule tests)"
        apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus --no-install-recommends \
            >/dev/null 2>&1 || true
    fi
    if ! command -v promtool >/dev/null 2>&1; then
        echo "promtool is required by the alert rule tests: install it (e.g. sudo apt-get install prometheus)" >&2
        exit 1
    fi
}
