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
TF_PIN := $(shell sed -n 's/^ *"\(tensorflow==[^"]*\)".*/\1/p' pyproject.toml)

# TensorFlow's INFO lines (oneDNN, CUDA probing) drown the demo's output.
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: all setup build test demo bench bazel-build clean

all: build

$(DEPS): pyproject.toml setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip "setuptools>=77" wheel
	$(PIP) install "$(TF_PIN)"
	$(PIP) install --no-build-isolation -e '.[test]'
	touch $@

setup: $(DEPS)

# Editable installs don't rebuild C++ by themselves: rebuild when a source changes.
# (.venv is order-only: the full install above builds the library itself.)
$(LIB): $(CC_SRC) setup.py | $(DEPS)
	$(PIP) install --no-build-isolation --no-deps -e .
	touch $@

build: $(LIB)

test: build
	$(PY) -m pytest -q tests

# A PKKD run on scikit-learn's bundled real digits (offline): teacher CNN and
# student ANN trained together, evaluated, then the student exported for serving.
DEMO := runs/demo_digits
demo: build
	rm -rf $(DEMO)
	$(PY) -m trainers.pkkd --flagfile=configs/demo_digits.flags
	mkdir -p $(DEMO)/export
	$(PY) -m addernet_tf.export --model_dir=$(DEMO) --format=saved_model --out=$(DEMO)/export/saved_model
	$(PY) -m addernet_tf.export --model_dir=$(DEMO) --format=tflite --out=$(DEMO)/export/student.tflite
	$(PY) -m addernet_tf.export --model_dir=$(DEMO) --format=tflite_int8 --out=$(DEMO)/export/student_int8.tflite

bench: build
	$(PY) -m benchmarks.adder_conv
	$(PY) -m benchmarks.train_step

# The same op library built with Bazel (offline, Debian's Bazel 4, installed by the
# script when missing), and the op tests run against it. An empty path must fail,
# not fall back to the pip-built library.
bazel-build: $(DEPS)
	lib=$$(custom_ops/bazel_build.sh $(PY)) && lib=$$(echo "$$lib" | tail -n 1) && test -f "$$lib" && \
	ADDERNET_TF_LIBRARY="$$lib" $(PY) -m pytest -q tests/ops

clean:
	rm -rf build $(LIB) *.egg-info
