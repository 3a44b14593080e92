# The two commands of the README. Each installs what it needs first.
.PHONY: run test bench
run:
	./scripts/run
test:
	./scripts/test
bench:
	./bench/run

# Fault injection (faults/README.md): its own throw-away PostgreSQL, the real server, writes faults/results/latest.md.
.PHONY: faults
faults:
	.venv/bin/python -m faults.run
