# The two commands: `make run` and `make test`. Each sets itself up (apt as root, venv, pip) and is idempotent.
SHELL := /bin/bash
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: run test setup lock bench docs clean

$(STAMP): pyproject.toml constraints.txt infra/setup.sh
	bash infra/setup.sh
	touch $(STAMP)

setup: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/wanying run

test: $(STAMP)
	bash infra/test.sh

bench: $(STAMP)
	$(VENV)/bin/python bench/log_throughput.py

docs: $(STAMP)
	$(VENV)/bin/wanying schemas export

# Re-resolve the pinned set after changing dependencies in pyproject.toml.
lock: $(STAMP)
	$(VENV)/bin/uv pip compile pyproject.toml --extra test --python-version 3.11 -o constraints.txt

clean:
	rm -rf $(VENV) var
