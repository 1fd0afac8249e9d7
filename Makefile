# The two commands a newcomer needs:  `make run`  and  `make test`.
# Both create (once) and reuse the virtual environment in .venv.
PYTHON ?= python3
VENV   ?= .venv
CONFIG ?= $(or $(ESCALATOR_CONFIG),escalator.yaml)
STAMP  := $(VENV)/.installed

.PHONY: run test console bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)  ## start the bot (embedded Redis unless REDIS_URL is set)
	$(VENV)/bin/escalator serve --config $(CONFIG)

test: $(STAMP)  ## lint, type-check and run the whole test suite
	$(VENV)/bin/ruff check bot workflows adapters tests bench
	$(VENV)/bin/mypy
	$(VENV)/bin/python -m pytest

console: $(STAMP)  ## type commands as a person would in chat
	$(VENV)/bin/escalator console --config $(CONFIG) --as $(or $(AS),alice)

bench: $(STAMP)  ## print core and Slack throughput / latency figures (needs a Redis at REDIS_URL or :6379)
	$(VENV)/bin/python bench/store_throughput.py
	$(VENV)/bin/python bench/slack_ack.py

clean:
	rm -rf $(VENV) .escalator .pytest_cache .mypy_cache .ruff_cache
