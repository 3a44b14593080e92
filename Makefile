# The commands of the README. Each installs what it needs first.
# make run PORT=8080 serves on another port; make run ARGS="0.0.0.0:8080 --workers 2" passes ARGS to runserver.
.PHONY: run test test-fast bench lint
run:
	PORT="$(PORT)" ./scripts/run $(ARGS)
test:
	./scripts/test
test-fast:
	./scripts/test-fast
# The static checks of make test alone (ruff, bandit, mypy, the import contracts), on an installed .venv.
lint:
	.venv/bin/python -m ruff check . && .venv/bin/python -m bandit -q -r hyperion events && .venv/bin/python -m mypy \
		&& .venv/bin/lint-imports
bench:
	./bench/run

# Lighthouse (mobile) on the students' main pages, as a visitor and logged in: bench/results/lighthouse.md.
.PHONY: lighthouse
lighthouse:
	bash scripts/lighthouse.sh

# Fault injection (faults/README.md): its own throw-away PostgreSQL, the real server, writes faults/results/latest.md.
.PHONY: faults
# Then the hash flood (faults/hashflood.py, its own section of the results), even if a scenario failed.
faults:
	status=0; .venv/bin/python -m faults.run || status=$$?; .venv/bin/python -m faults.hashflood || status=$$?; exit $$status
