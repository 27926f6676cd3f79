# affectzoo: every target sets up .venv on first use (pinned versions from requirements.lock).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

DATASET ?= sample
ROOT    ?=
OUT     ?= shards/$(DATASET)
RUNNER  ?= direct
DEVICE  ?= cpu
EPOCHS  ?= 2
MODEL   ?= accm
EXTRA   ?=
SIZES   ?= 200,2000

.PHONY: help venv extract train test bench bench-scale bench-dask clean

help:  ## list targets
	@grep -E '^[a-z]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*##/\t/'

$(STAMP): requirements.lock pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet "setuptools>=68" wheel
	$(PY) -m pip install --quiet -r requirements.lock
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

venv: $(STAMP)  ## create .venv and install the pinned dependencies

extract: $(STAMP)  ## run the extraction pipeline (DATASET, ROOT, OUT, RUNNER=direct|dask|portable|..., DEVICE; more flags in EXTRA)
	$(PY) -m pipelines.extract --dataset $(DATASET) $(if $(ROOT),--root $(ROOT)) \
		--out $(OUT) --runner $(RUNNER) --device $(DEVICE) $(EXTRA)

train: $(STAMP)  ## train MODEL on OUT for EPOCHS
	$(PY) -m zoo.train $(MODEL) --shards $(OUT) --epochs $(EPOCHS) --device $(DEVICE)

test: $(STAMP)  ## run the test suite
	$(PY) -m pytest -q

bench: $(STAMP)  ## run the benchmarks (results in bench/RESULTS.md and bench/results_*.md)
	$(PY) -m bench.run
	$(PY) -m bench.pipeline
	$(PY) -m bench.decoders
	$(PY) -m bench.predict
	$(PY) -m bench.extractors_dbface
	$(PY) -m bench.extractors_openpose
	test -f shards/sample/manifest.json || $(PY) -m pipelines.extract --dataset sample --out shards/sample
	$(PY) -m bench.zoo_bench

bench-scale: $(STAMP)  ## corpus-scale benchmark: throughput, start-up and peak RSS at two sizes (DEVICE; SIZES)
	$(PY) -m bench.scale --device $(DEVICE) --sizes $(SIZES) --record

bench-dask: $(STAMP)  ## --runner dask against the local runner: throughput ratio and peak RSS at two sizes
	$(PY) -m bench.dask_runner --record

clean:  ## remove shards and run outputs (keeps .venv)
	rm -rf shards runs
