# Everything the project needs is installed by these rules: `make demo` and
# `make test` work on a fresh machine with nothing installed by hand.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --quiet --disable-pip-version-check
DEPS   := $(VENV)/.deps-installed
LIB    := addernet_tf/ops/_adder_ops.so
CC_SRC := $(shell find custom_ops/cc -name '*.cc' -o -name '*.h' | grep -v '\.cu\.')
# The TensorFlow pin, read from pyproject.toml so it is written down once.
TF_PIN  = $(shell $(PY) -c "import tomllib; print(next(d for d in tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies'] if d.startswith('tensorflow==')))")

.PHONY: all setup build test demo bench bazel-build clean

all: build

$(DEPS): pyproject.toml setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip "setuptools>=64" wheel
	$(PIP) install "$(TF_PIN)"
	$(PIP) install --no-build-isolation -e '.[test]'
	touch $@

setup: $(DEPS)

# Editable installs don't rebuild C++ by themselves: rebuild when a source changes.
$(LIB): $(DEPS) $(CC_SRC)
	$(PIP) install --no-build-isolation --no-deps -e .
	touch $@

build: $(LIB)

test: build
	$(PY) -m pytest -q tests

demo: build
	$(PY) -m addernet_tf.demo

bench: build
	$(PY) -m benchmarks.adder_conv

clean:
	rm -rf build $(LIB) *.egg-info
