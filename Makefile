# Doorward — every target sets up .venv on first use; nothing else to run first.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run test bench check lint types contracts fmt clean venv lock pi-check test-pi

$(STAMP): pyproject.toml constraints.txt
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) (Python 3.11)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "setuptools>=68,<81" wheel
	$(PY) -m pip install --quiet -e ".[dev,bench]" -c constraints.txt
	# the benchmarks' baseline (the prototype's pipeline); it declares the source `dlib`,
	# which dlib-bin provides, so it goes in without its dependencies. Never on a door.
	$(PY) -m pip install --quiet --no-deps "face_recognition==1.3.0"
	touch $(STAMP)

venv: $(STAMP)

# make run CAMERA=photo.jpg: the replay camera shows that photo (or video, or folder)
run: $(STAMP)
	exec $(VENV)/bin/doorward run $(if $(CAMERA),--camera "$(CAMERA)")

test: $(STAMP)
	@command -v chromium >/dev/null && mariadb-admin --protocol=tcp -h 127.0.0.1 -u root ping >/dev/null 2>&1 \
		|| echo "make test: the browser/MySQL/MQTT tests need /usr/bin/chromium, MariaDB on 127.0.0.1:3306 and Mosquitto on :1883 (they skip without them; .ci/run installs and starts all three)"
	$(VENV)/bin/pytest

bench: $(STAMP)
	$(PY) -m bench

# Every gate CI runs besides the tests: lint, format, types, import contracts.
check: lint types contracts

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

types: $(STAMP)
	$(VENV)/bin/mypy

contracts: $(STAMP)
	$(VENV)/bin/lint-imports

fmt: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# Pin what .venv holds now (after a deliberate upgrade that passed make test and make bench).
lock: $(STAMP)
	{ sed -n '1,2p' constraints.txt; $(PY) -m pip freeze --exclude-editable | grep -v -i '^doorward'; } > constraints.tmp
	mv constraints.tmp constraints.txt

# An emulated Raspberry Pi (arm64 Debian 12 root, qemu-user, Cortex-A72/A76): install.sh in it,
# a grant and a denial, every compiled module and its page alignment. Root; ~12 min with the
# cached base root, test-pi rebuilds that root first (20-40 min). Not part of CI (docs/BENCHMARKS.md).
pi-check:
	bash provisioning/pi-check.sh

test-pi:
	bash provisioning/pi-check.sh --fresh-root

clean:
	rm -rf $(VENV) var .pytest_cache
