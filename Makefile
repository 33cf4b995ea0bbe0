# yunbang — the two commands a new machine needs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: test-fast run test bench lint install clean chromium firefox fonts web gstreamer netshape services prodstack

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e '.[test,lint]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

WEB_STAMP := web-client/node_modules/.package-lock.json

$(WEB_STAMP): web-client/package.json web-client/package-lock.json
	cd web-client && npm ci --no-audit --no-fund

install: $(STAMP) $(WEB_STAMP)

# The browser client (web-client/dist, served at /app/): rebuilt when its sources change. `make web`
# builds it for the browser tests and benches (`npm run build:test`: with the window.yb debug hook
# they read); `make run` builds it as the Dockerfile does (`npm run build`: without). Each build
# empties dist, its marker with it, so going from one to the other builds again.
WEB_SOURCES := $(shell find web-client/src -type f -not -name schema.d.ts 2>/dev/null) \
	web-client/index.html web-client/vite.config.ts web-client/openapi.json web-client/scripts/compress.mjs \
	web-client/tsconfig.json web-client/tsconfig.app.json web-client/tsconfig.node.json web-client/package.json

web-client/dist/.built-test: $(WEB_STAMP) $(WEB_SOURCES)
	cd web-client && npm run build:test
	touch $@

web-client/dist/.built-production: $(WEB_STAMP) $(WEB_SOURCES)
	cd web-client && npm run build
	touch $@

.PHONY: web-production
web: web-client/dist/.built-test
web-production: web-client/dist/.built-production

# Browser tests drive Debian's Chromium (Playwright's own browser download cannot work here).
chromium:
	@command -v chromium >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium)

# Firefox in the browser tests (tests/test_web_firefox.py): Debian's Firefox ESR, driven by
# puppeteer-core over WebDriver BiDi from tests/firefox (its own package.json, not web-client's).
FIREFOX_STAMP := tests/firefox/node_modules/.package-lock.json

$(FIREFOX_STAMP): tests/firefox/package.json tests/firefox/package-lock.json
	cd tests/firefox && npm ci --no-audit --no-fund

firefox: $(FIREFOX_STAMP)
	@command -v firefox-esr >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq firefox-esr)

# The webrtcbin client test (tests/gst_client.py) runs Debian's GStreamer in Debian's own Python.
GST_PACKAGES := gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-nice \
	python3-gst-1.0 gir1.2-gst-plugins-base-1.0 gir1.2-gst-plugins-bad-1.0 python3-socketio python3-websocket
gstreamer:
	@dpkg -s $(GST_PACKAGES) >/dev/null 2>&1 || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(GST_PACKAGES))

# bench/weak_link.py shapes the worker's link: network namespaces and tc (iproute2), NFQUEUE rules (iptables-legacy).
netshape:
	@command -v iptables-legacy >/dev/null && command -v tc >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iproute2 iptables)

# Watermarks are drawn in Chinese: Debian's Noto CJK fonts.
fonts:
	@ls /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc >/dev/null 2>&1 || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-noto-cjk)

run: install fonts web-production
	$(VENV)/bin/yunbang migrate
	$(VENV)/bin/yunbang seed --demo
	YUNBANG_DEV_PAGES=$${YUNBANG_DEV_PAGES:-true} $(VENV)/bin/yunbang serve

# PostgreSQL and Redis: the tests use the configured ones when they answer, else start their own
# from these packages (tests/services.py); installed here when their programs are missing.
services:
	@(ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && command -v redis-server >/dev/null) || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql redis-server)

# The production topology (tests/test_production.py, bench/join.py --topology production): Debian's
# nginx and coturn run as processes with the deploy/ files; docker-compose validates the compose file.
prodstack:
	@(command -v nginx || test -x /usr/sbin/nginx) >/dev/null && command -v turnserver >/dev/null && (command -v docker-compose >/dev/null || docker compose version >/dev/null 2>&1) \
		|| (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx coturn docker-compose)

test: install chromium firefox fonts gstreamer web services prodstack
	$(VENV)/bin/pytest -q $(PYTEST_ARGS)

# The loop while developing: SQLite only, no browser, no media peers, nothing slow; needs
# neither PostgreSQL nor Redis. `make test` still runs everything.
test-fast: install
	YUNBANG_TEST_FAST=1 $(VENV)/bin/pytest -q -n auto -m "not browser and not postgres and not redis and not media and not slow" $(PYTEST_ARGS)

# ruff: pyflakes, syntax errors, bugbear, RUF006 (a task started and not kept: asyncio holds it
# weakly; the app owns its tasks, signaling/tasks.py), import order (I) and pyupgrade (UP).
# mypy: --strict (pyproject.toml) on all three packages.
lint: install
	$(VENV)/bin/lint-imports
	$(VENV)/bin/ruff check --select F,E9,B,RUF006,I,UP server signaling uploads tests bench deploy typings
	$(PY) -m deploy.render --check
	$(PY) -m server.check_migrations
	$(VENV)/bin/mypy server signaling uploads
	cd web-client && npm run typecheck

bench: install chromium fonts web netshape services prodstack
	$(PY) -m tests.services -- $(PY) bench/queue.py $(BENCH_ARGS)
	$(PY) bench/relay.py $(BENCH_ARGS)
	$(PY) bench/uploads.py $(BENCH_ARGS)
	$(PY) bench/login.py $(BENCH_ARGS)
	$(PY) -m tests.services -- $(PY) bench/reports.py $(BENCH_ARGS)
	$(PY) bench/join.py $(BENCH_ARGS)
	$(PY) bench/join.py --topology production $(BENCH_ARGS)
	$(PY) bench/weak_link.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var .pytest_cache
