"""Fault injection for Hyperion Events: invariants, load, a throw-away PostgreSQL and the harness (faults.run)."""
