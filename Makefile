# The two commands a newcomer needs:  `make run`  and  `make test`.
# Both create (once) and reuse the virtual environment in .venv.
#   make console WHO=ben    act as ben in the console (default alice)
#   make reset-data         delete the embedded Redis data (every case!); asks first, or CONFIRM=yes
PYTHON ?= python3
VENV   ?= .venv
CONFIG ?= $(or $(ESCALATOR_CONFIG),escalator.yaml)
DATA   ?= $(or $(ESCALATOR_DATA_DIR),.escalator)
WHO    ?= alice
STAMP  := $(VENV)/.installed

# The interpreter the venv was built with is written into the stamp: a venv built by another
# Python (after an upgrade, or PYTHON=python3.12) is rebuilt instead of reused.
PY_ID := $(shell $(PYTHON) -c 'import platform, sys; print(sys.implementation.name + "-" + platform.python_version())' 2>/dev/null)
ifeq ($(PY_ID),)
$(error '$(PYTHON)' does not run: install Python 3.11+ or set PYTHON=/path/to/python3.11)
endif
ifneq ($(shell cat $(STAMP) 2>/dev/null),$(PY_ID))
REBUILD := venv-mismatch
endif

.PHONY: run test console bench clean reset-data venv-mismatch
venv-mismatch: ;

$(STAMP): pyproject.toml $(REBUILD)
	@if [ -d $(VENV) ] && [ "$$(cat $(STAMP) 2>/dev/null)" != "$(PY_ID)" ]; then \
		echo "$(VENV) was built with $$(cat $(STAMP) 2>/dev/null || echo another Python), not $(PY_ID): rebuilding it"; \
		rm -rf $(VENV); \
	fi
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -e '.[dev]'
	echo '$(PY_ID)' > $(STAMP)

run: $(STAMP)  ## start the bot (embedded Redis unless REDIS_URL is set); Ctrl-C stops it
	$(VENV)/bin/escalator serve --config $(CONFIG)

test: $(STAMP)  ## lint, type-check and run the whole test suite
	$(VENV)/bin/ruff check bot workflows adapters tests bench
	$(VENV)/bin/mypy
	$(VENV)/bin/python -m pytest

console: $(STAMP)  ## type commands as a person would in chat: make console WHO=ben
	$(VENV)/bin/escalator console --config $(CONFIG) --as $(WHO)

bench: $(STAMP)  ## print core and Slack throughput / latency figures (needs a Redis at REDIS_URL or :6379)
	$(VENV)/bin/python bench/store_throughput.py
	$(VENV)/bin/python bench/slack_ack.py

clean:  ## remove the venv and caches; never the cases (see reset-data)
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

reset-data:  ## delete every case, timer and outbox message of the embedded Redis in $(DATA)
	@if [ ! -e "$(DATA)" ]; then echo "No data in $(DATA): nothing to reset."; exit 0; fi; \
	echo "WARNING: this deletes $(DATA): every case, timeline, timer and undelivered message of the embedded Redis."; \
	echo "Stop the bot first. (A Redis at REDIS_URL is not touched.)"; \
	if [ "$(CONFIRM)" != "yes" ]; then \
		printf 'Type yes to delete it: '; read answer || answer=; \
		if [ "$$answer" != "yes" ]; then echo "Kept $(DATA)."; exit 1; fi; \
	fi; \
	rm -rf "$(DATA)" && echo "Deleted $(DATA)."
