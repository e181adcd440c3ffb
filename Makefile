# The two commands: `make run` (the console with its worker and scheduler) and `make test`.
PYTHON ?= python3.11
VENV := .venv
PORT ?= 8000

.PHONY: run test install lint clean bench fuzz mutation

$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[test,sandbox]'
	touch $@

install: $(VENV)/.installed

run: install
	OPSCONSOLE_SANDBOX=1 $(VENV)/bin/python manage.py runconsole --port $(PORT)

test: install
	scripts/test.sh

# The API fuzzing of `make test` (tests/security/test_api_fuzzing.py) with a random seed and a bigger
# budget, to find what the fixed one does not: FUZZ_EXAMPLES (100) per operation and phase, FUZZ_SEED
# (random; a number repeats a run). Output and report.json in var/fuzz/; 2 to 4 minutes.
fuzz: install
	@mkdir -p var/fuzz
	FUZZ_SEED=$${FUZZ_SEED:-random} FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-100} FUZZ_REPORT_DIR=var/fuzz \
	scripts/with-services.sh $(VENV)/bin/python -m pytest -q tests/security/test_api_fuzzing.py -k answers_every; \
	status=$$?; tail -n 20 var/fuzz/schemathesis.txt; exit $$status

# Every benchmark in one table (docs/performance.md); needs PostgreSQL, Redis and Chromium, 11-18 minutes.
# `make bench BENCH_ARGS="--quick"` for a smoke run, `BENCH_ARGS="--only history"` for one.
bench: install
	DATABASE_URL=$${DATABASE_URL:-postgres://root@127.0.0.1:5432/postgres} \
	REDIS_URL=$${REDIS_URL:-redis://127.0.0.1:6379/0} $(VENV)/bin/python bench/run.py $(BENCH_ARGS)

# Mutation testing of the guard functions (scripts/mutation.py, docs/testing.md): mutmut changes them
# one small edit at a time and runs the tests that check each; prints killed/tested per module and
# the survivors, fails below 90% in any module. Not part of `make test`: over an hour on 2 cores
# (per group: 5-30 minutes, docs/testing.md).
# `make mutation GROUPS="approvals dr"` for some groups; output in var/mutation/.
mutation: install
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[mutation]'
	scripts/with-services.sh $(VENV)/bin/python scripts/mutation.py $(GROUPS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

clean:
	rm -rf $(VENV) var .pytest_cache
