# Two entry points for a fresh machine: `make demo` and `make test`.
# torch is pinned here, before the project, so pip takes the CPU wheel instead of a multi-GB CUDA build;
# the project itself only asks for torch>=2.4 so GPU users keep their own build.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup test demo lint bench reproduce clean browser

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[dev,rl,serve]'
	touch $(STAMP)

test: $(STAMP) browser
	$(VENV)/bin/ruff check src tests benchmarks scripts
	$(PY) -m pytest -q

# The browser test of filmkit serve drives Debian's chromium headless. Installed here where apt-get can (as root, as
# in CI); elsewhere the test skips and says why.
browser:
	@command -v chromedriver >/dev/null || { command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] && \
		apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null; } || \
		echo "chromium could not be installed: the browser test of filmkit serve will skip"

demo: $(STAMP)
	$(VENV)/bin/filmkit demo

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks scripts
	$(VENV)/bin/ruff format --check src tests benchmarks scripts

# Speed measurements (about 15 minutes on 2 cores; docs/performance.md). The hour-long CLEVR-mini speedrun and the
# GPU benchmark (benchmarks/bench_gpu.py) are run on their own.
bench: $(STAMP)
	$(PY) benchmarks/bench_model.py --presets cpu paper paper-pixels --precision fp32 bf16
	$(PY) benchmarks/bench_inference.py --presets cpu paper --precision fp32 bf16
	$(PY) benchmarks/bench_flops.py --presets cpu paper paper-pixels --precision fp32 bf16
	$(PY) benchmarks/bench_loader.py
	$(PY) benchmarks/bench_questions.py
	$(PY) benchmarks/bench_generate.py

# The paper's tables, analysis and transfer results on clevr-mini and cogent-mini (docs/reproduction.md; about
# 2 hours on 2 cores, most of it training). Every step resumes: rerun after an interruption. A longer budget:
# make reproduce REPRODUCE_ARGS="--steps 40000 --max-minutes 60 --out runs/reproduce-40k --doc runs/reproduce-40k.md"
REPRODUCE_ARGS ?=
reproduce: $(STAMP)
	$(VENV)/bin/filmkit generate dataset --preset clevr-mini --out data/clevr-mini
	$(VENV)/bin/filmkit generate dataset --preset cogent-mini --out data/cogent-mini
	$(VENV)/bin/filmkit preprocess --data data/clevr-mini --out data/clevr-mini-cache64 --resolution 64x64
	$(PY) benchmarks/reproduce.py --data data/clevr-mini-cache64 --dataset data/clevr-mini --cogent data/cogent-mini \
		$(REPRODUCE_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
