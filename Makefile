# Every target sets up .venv from nothing when needed (scripts/ensure_venv.sh).
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: demo demo-weights test bench lint format setup clean

## demo: the main job on the bundled (generated) demo data
demo: setup
	$(VENV)/bin/detection-debugger demo

## demo-weights: retrain the demo's two networks (CPU, ~25 min) and refresh demo/weights/
demo-weights: setup
	$(VENV)/bin/detection-debugger demo weights --out .data/demo-models

## test: linter, formatter check and the whole test suite (starts its own MongoDB)
test: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m pytest

## bench: evaluation speed and memory against pycocotools and faster-coco-eval, and every
## FiftyOne-side step at IMAGES images (default 5000; `make bench IMAGES=100000` for 100k)
IMAGES ?= 5000
bench: setup
	$(PY) bench/evaluation.py
	$(PY) bench/import_speed.py
	$(PY) bench/evaluation_run.py
	$(PY) bench/slices.py
	$(PY) bench/slice_discovery.py
	$(PY) bench/error_analysis.py
	$(PY) bench/label_issues.py
	$(PY) bench/embeddings.py
	$(PY) bench/fiftyone_scale.py --images $(IMAGES)

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: setup
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

setup:
	@bash scripts/ensure_venv.sh

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache bench/out
