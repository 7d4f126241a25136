# Two commands on a fresh machine with Python 3.11 and pip:
#   make demo   set up .venv, export a zoo model to all four targets, check parity, benchmark, report
#   make test   set up .venv, run the test suite
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.edgekit-installed

.PHONY: demo test test-all setup clean

setup: $(STAMP)

# Installs this checkout (never the unrelated `edgekit` on PyPI) with the versions in constraints.txt.
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e ".[device,server,export,test]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/edgekit demo --model resnet18 --out out/demo

# tests/server/test_dashboard_browser.py needs headless Chromium and skips without it. Not installed here:
# it is ~80 MB of Debian packages; on a dev box: apt-get install -y --no-install-recommends chromium
test: $(STAMP)
	$(BIN)/python -m pytest -q

test-all: $(STAMP)
	$(BIN)/python -m pytest -q -m ""

clean:
	rm -rf $(VENV) .venv-device out
