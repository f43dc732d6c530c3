# mimsdir: `make help` lists the targets.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
CONFIG ?= config.yaml

.PHONY: help install demo test lint mutants bench schema fixtures down clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

install: ## install apt packages (if missing), the venv and the package (idempotent)
	@bash scripts/bootstrap.sh

demo: install ## start the embedded directory with the demo school and print how to sign in
	@bash scripts/demo.sh

# Three workers on 2 cores (pytest-xdist, one slapd each; a third of a worker's time is waiting:
# docs/testing.md); then the equal-time tests alone, on a quiet machine.
test: install ## lint and type-check, then the whole test suite against a real slapd
	@$(VENV)/bin/ruff check mimsdir demo tests scripts benchmarks
	@$(VENV)/bin/mypy
	@$(VENV)/bin/pytest -q -n 3 --clock-shift-days=730 -m 'not timing'
	@$(VENV)/bin/pytest -q --clock-shift-days=730 -m timing

lint: install ## ruff and mypy
	@$(VENV)/bin/ruff check mimsdir demo tests scripts benchmarks
	@$(VENV)/bin/mypy

# The pure core's mutants (mutmut; config in pyproject.toml): of views/common.py only the
# redirect validator's. Not part of `make test`: minutes, and a score to read, not a gate.
MUTANTS := 'mimsdir.sync.plan.*' 'mimsdir.sync.guards.*' 'mimsdir.challenge.*' \
	'mimsdir.portal.sspr.*' 'mimsdir.portal.views.common.x_safe_next__mutmut_*'

mutants: install ## mutation testing of the pure core (mutmut, unit tests only; docs/testing.md)
	@rm -rf mutants
	@start=$$(date +%s); \
	CI=true $(VENV)/bin/mutmut run $(MUTANTS) >mutants.log 2>&1 || { tail -40 mutants.log; exit 1; }; \
	echo "mutmut run: $$(( $$(date +%s) - start )) s (log: mutants.log)"
	@$(PY) scripts/mutants_report.py $(MUTANTS)

SIZE ?= 100000
bench: install ## every national-scale workload against its floor (SIZE=500000; docs/performance.md)
	@$(PY) benchmarks/bench.py --size $(SIZE)

schema: install ## regenerate schema/mims.schema and schema/mims.ldif from mimsdir/schemadef.py
	@$(PY) scripts/gen_schema.py

fixtures: install ## regenerate ldap-fixtures/ from scripts/make_demo_fixtures.py
	@$(PY) scripts/make_demo_fixtures.py

down: ## stop the demo applications, the portal and the directory
	@bash scripts/demo_apps.sh stop $(CONFIG)
	@bash scripts/portal.sh stop $(CONFIG)
	@$(VENV)/bin/mimsdir --config $(CONFIG) directory down

clean: down ## stop the demo and delete its state (var/)
	rm -rf var
