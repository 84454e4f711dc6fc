# MoGENet: `make demo` makes the default data, preprocesses it and trains on it,
# `make test` runs the whole test suite. Both create .venv and install what
# they need when it is missing.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO := demo_out

.PHONY: install test lint format demo bench-beam bench-train clean

$(STAMP): setup.py pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# pytest exits 5 when it collected no test: that is a failure here too.
test: lint
	@$(BIN)/python -m pytest -q; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests"; exit 1; fi; exit $$rc

demo: $(STAMP)
	$(BIN)/python -m beam_pipelines.synthetic --out $(DEMO)/data --users 2000 --items 500 --seed 7
	$(BIN)/python -m beam_pipelines.run --input $(DEMO)/data --format canonical \
		--output $(DEMO)/samples --nested_tasks --overwrite --runner FnApiRunner
	$(BIN)/python -m model.train --data $(DEMO)/samples --model_dir $(DEMO)/model --overwrite --verbose 2
	@echo "samples in $(DEMO)/samples, trained model, TensorBoard logs and metrics.json in $(DEMO)/model"

bench-beam: $(STAMP)
	$(BIN)/python benchmarks/beam_sampling.py

bench-train: $(STAMP)
	$(BIN)/python benchmarks/train_throughput.py

clean:
	rm -rf $(DEMO) .pytest_cache .ruff_cache
