# The README's commands. `make run` sets up and starts the station; `make test` sets up and tests.
# `make run ARGS="--http-port 8090 --seed 7"` passes options to `ilrs-ops up`.
PY ?= python3
ARGS ?=
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup run test test-slow lint bench

$(BIN)/ilrs-ops: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	@touch $@

setup: $(BIN)/ilrs-ops

run: setup
	$(BIN)/ilrs-ops up $(ARGS)

test: setup
	scripts/ensure-mosquitto
	scripts/ensure-chromium
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/ilrs-ops profiles check hardware_profiles
	$(BIN)/pytest -m "not slow"

# The long fault and soak tests (crashes, overload, broker restart, fuzzing): CI runs them
# after `make test`.
test-slow: setup
	scripts/ensure-mosquitto
	$(BIN)/pytest -m slow

bench: setup
	$(BIN)/python bench/bench_decode.py
	$(BIN)/python bench/bench_cli.py
