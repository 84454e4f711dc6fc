# MoGENet: `make demo` makes the default data, preprocesses it, trains on it,
# exports the model, serves it and ranks items through the server;
# `make test` runs the whole test suite. Both create .venv and install what
# they need when it is missing.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO := demo_out

.PHONY: install test lint format demo bench-beam bench-train bench-serving bench-soak clean

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
	$(BIN)/python -m synthetic.generator --out $(DEMO)/data --users 4000 --items 500 \
		--mean_exposures 40 --seed 7
	$(BIN)/python -m beam_pipelines.run --input $(DEMO)/data --format canonical \
		--output $(DEMO)/samples --nested_tasks --overwrite --runner FnApiRunner --graph_edges any
	@# 5 epochs keep the demo to a few minutes; the reports train 20 (see README).
	$(BIN)/python -m model.train --data $(DEMO)/samples --model_dir $(DEMO)/model --overwrite \
		--epochs 5 --verbose 2 --embedding_init graph --embedding_init_rank 64
	$(BIN)/python -m serving.export --model_dir $(DEMO)/model --data $(DEMO)/samples \
		--export_base $(DEMO)/export --model_name mogenet --evaluate
	@# Serve the export on a free port, rank 20 items for one user over gRPC, stop.
	@set -e; log=$(DEMO)/server.log; \
	$(BIN)/python -m serving.server --port 0 --model_name mogenet \
		--model_base_path $(DEMO)/export/mogenet > $$log 2>&1 & pid=$$!; \
	trap 'kill $$pid 2>/dev/null || true' EXIT; \
	for i in $$(seq 180); do grep -q "^serving mogenet on" $$log && break; sleep 1; done; \
	target=$$(sed -n 's/^serving mogenet on //p' $$log); \
	test -n "$$target" || { cat $$log; exit 1; }; \
	user=$$(cut -f1 $(DEMO)/model/entities/vocab/user-*.tsv | head -1); \
	items=$$(cut -f1 $(DEMO)/model/entities/vocab/item-*.tsv | head -20 | paste -sd,); \
	echo "ranking 20 items for user $$user through the server on $$target:"; \
	$(BIN)/python -m serving.client --server $$target --model_name mogenet \
		--user $$user --items $$items --top_k 10; \
	kill -TERM $$pid; wait $$pid
	@echo "samples in $(DEMO)/samples, model and metrics.json in $(DEMO)/model, SavedModel in $(DEMO)/export"

bench-beam: $(STAMP)
	$(BIN)/python benchmarks/beam_sampling.py

bench-train: $(STAMP)
	$(BIN)/python benchmarks/train_throughput.py

bench-serving: $(STAMP)
	$(BIN)/python benchmarks/serving_latency.py --model_base_path $(DEMO)/export/mogenet \
		--server_args "--num_processes 2" --ceiling

bench-soak: $(STAMP)
	$(BIN)/python benchmarks/serving_soak.py --model_base_path $(DEMO)/export/mogenet \
		--duration_s 150 --swap_every_s 4 --qps 40 --rest_qps 10

clean:
	rm -rf $(DEMO) .pytest_cache .ruff_cache
