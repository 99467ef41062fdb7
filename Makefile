# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
# Everything the project needs is installed by these rules: `make demo` and
# `make test` work on a fresh machine with nothing installed by hand.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --quiet --disable-pip-version-check
DEPS   := $(VENV)/.deps-installed
LIB    := addernet_tf/ops/_adder_ops.so
CC_SRC := $(shell find custom_ops/cc custom_ops/lite third_party/litert -name '*.cc' -o -name '*.h') custom_ops/cuda_config.py custom_ops/cpu_flags.py
# The TensorFlow pin, read from pyproject.toml so it is written down once.
TF_PIN := $(shell sed -n 's/^ *"\(tensorflow==[^"]*\)".*/\1/p' pyproject.toml)

# TensorFlow's INFO lines (oneDNN, CUDA probing) drown the demo's output.
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: all setup build cuda-check test demo study bench bench-gpu kernel-guard bazel-build clean

all: build

$(DEPS): pyproject.toml setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip "setuptools>=77" wheel
	$(PIP) install "$(TF_PIN)"
	$(PIP) install --no-build-isolation -e '.[test]'
	touch $@

setup: $(DEPS)

# The CPU target the library is built for (custom_ops/cpu_flags.py): a stamp per
# target, so `ADDERNET_TF_MARCH=x86-64-v3 make build` rebuilds, and so does a
# plain `make build` after it.
MARCH_STAMP := build/march-$(or $(ADDERNET_TF_MARCH),native)
$(MARCH_STAMP):
	mkdir -p build && rm -f build/march-* && touch $@

# Editable installs don't rebuild C++ by themselves: rebuild when a source changes.
# (.venv is order-only: the full install above builds the library itself.)
$(LIB): $(CC_SRC) setup.py $(MARCH_STAMP) | $(DEPS)
	$(PIP) install --no-build-isolation --no-deps -e .
	touch $@

build: $(LIB)

# Compiles every CUDA source with nvcc, warnings as errors; needs no GPU. Where
# nvcc is missing it says so and passes, unless ADDERNET_TF_CUDA=1 (as in CI).
# tests/gpu then runs the same kernels: on a GPU when there is one, and always
# under the CPU emulation of custom_ops/emulation/cuda_emulation.h.
CUDA_CHECK := build/cuda_check
cuda-check: $(DEPS)
	@nvcc_path=$$($(PY) custom_ops/cuda_config.py nvcc); \
	if [ -z "$$nvcc_path" ]; then \
	  if [ "$${ADDERNET_TF_CUDA:-auto}" = 1 ]; then echo "cuda-check: ADDERNET_TF_CUDA=1 but nvcc is not on PATH" >&2; exit 1; fi; \
	  echo "cuda-check: SKIPPED, nvcc is not on PATH (ADDERNET_TF_CUDA=1 makes this an error)"; exit 0; \
	fi; \
	flags=$$($(PY) custom_ops/cuda_config.py flags) || exit 1; \
	mkdir -p $(CUDA_CHECK); \
	for src in $$($(PY) custom_ops/cuda_config.py sources); do \
	  echo "cuda-check: nvcc $$src"; \
	  "$$nvcc_path" $$flags --Werror all-warnings -Xcompiler=-Wall,-Wextra,-Werror \
	    -c "$$src" -o "$(CUDA_CHECK)/$$(basename "$$src").o" || exit 1; \
	done

test: build cuda-check
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
	$(PY) -m addernet_tf.export --model_dir=$(DEMO) --format=tflite_adder --out=$(DEMO)/export/student_adder.tflite
	$(PY) -m addernet_tf.export --model_dir=$(DEMO) --format=tflite_adder_int8 --out=$(DEMO)/export/student_adder_int8.tflite

# cnn, ann, kd and pkkd, 3 seeds each, on 5,000 real CIFAR-10 images (a folder
# beside the project); resumes if interrupted; study.md and report/ in STUDY.
STUDY      := runs/study_cifar10_folder
STUDY_DATA ?= ../shared/data/cifar10-5k
study: build
	@test -d $(STUDY_DATA)/train || { echo "study: no image folder at STUDY_DATA=$(STUDY_DATA) (DIR/train/<class>/*.jpg)"; exit 1; }
	$(PY) -m trainers.study --flagfile=configs/study_cifar10_folder.flags --data_dir=$(STUDY_DATA) \
		--methods=cnn,ann,kd,pkkd --seeds=0,1,2 --baseline=ann --study_dir=$(STUDY)

bench: build
	$(PY) -m benchmarks.adder_conv
	$(PY) -m benchmarks.kernel_isa
	$(PY) -m benchmarks.train_step
	$(PY) -m benchmarks.deploy
	$(PY) -m benchmarks.int8_sad

# Issue 14's guard, run by CI: fails when the kernels built for AVX2 only are more
# than 4x slower per pair than the native build (one thread, no TF), or when the
# library's whole-network forward or forward+backward is over 4x tf.nn.conv2d.
# Both ratios are measured in one run, interleaved; healthy values and the bug
# they catch are in docs/DESIGN.md ("Guards").
kernel-guard: build
	$(PY) -m benchmarks.kernel_isa --check 4
	$(PY) -m benchmarks.adder_conv --check 4

# On a machine with a GPU, CuPy or PyTorch, and nvcc (no TensorFlow needed):
# the CUDA kernels against cuDNN. Plain python3, not the venv.
bench-gpu:
	python3 -m benchmarks.adder_conv_gpu

# The same op library and LiteRT op built with Bazel (offline, Debian's Bazel 4,
# installed by the script when missing), and the op and LiteRT tests run against
# them. An empty path must fail, not fall back to the pip-built libraries.
bazel-build: $(DEPS)
	lib=$$(custom_ops/bazel_build.sh $(PY)) && lib=$$(echo "$$lib" | tail -n 1) && test -f "$$lib" && \
	ADDERNET_TF_LIBRARY="$$lib" ADDERNET_TF_LITERT_LIBRARY="$$(dirname "$$lib")/_adder_litert.so" \
	$(PY) -m pytest -q tests/ops tests/lite

clean:
	rm -rf build $(LIB) addernet_tf/lite/_adder_litert.so *.egg-info
