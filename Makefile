# The two commands: `make run` and `make test`. Each sets itself up first (apt as root, .venv, pinned Python
# packages, the web build); set-up is idempotent and takes seconds when nothing changed.
SHELL := /bin/bash
VENV := .venv

.PHONY: run test setup lock bench docs clean

setup:
	bash infra/setup.sh

run: setup
	$(VENV)/bin/wanying run

test: setup
	bash infra/test.sh

bench: setup
	$(VENV)/bin/python bench/log_throughput.py

docs: setup
	$(VENV)/bin/wanying schemas export

# Re-resolve the pinned set after changing dependencies in pyproject.toml.
lock: setup
	$(VENV)/bin/uv pip compile pyproject.toml --extra test --python-version 3.11 -o constraints.txt

clean:
	rm -rf $(VENV) var web/node_modules web/dist
