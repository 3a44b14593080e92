"""What a server process costs, read from /proc: CPU time (all threads), threads and resident memory,
over the server's whole process tree (gunicorn's master and worker are summed)."""

from __future__ import annotations

import os
import threading
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (gunicorn: master, worker)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        try:
            for task in Path(f"/proc/{current}/task").iterdir():
                children = (task / "children").read_text().split()
                todo += [int(child) for child in children]
        except OSError:
            continue
    return found


def cpu_seconds(pids: list[int]) -> float:
    """utime + stime of each process (which includes all its threads), summed."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # fields 14 and 15 of proc(5): utime, stime
    return total / CLOCK_TICKS


def threads_and_rss(pids: list[int]) -> tuple[int, float, dict[int, float]]:
    """(threads, RSS in MB summed, RSS in MB per process)."""
    threads, per_process = 0, {}
    for pid in pids:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("Threads:"):
                threads += int(line.split()[1])
            elif line.startswith("VmRSS:"):
                per_process[pid] = int(line.split()[1]) / 1024
    return threads, sum(per_process.values()), per_process


class Sampler:
    """Peak threads and RSS of a process tree, sampled every ``interval`` seconds in a background thread."""

    def __init__(self, root_pid: int, interval: float = 0.05) -> None:
        self.root_pid = root_pid
        self.interval = interval
        self.peak_threads = 0
        self.peak_rss_mb = 0.0
        self.peak_rss_per_process_mb = 0.0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sampler", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            pids = process_tree(self.root_pid)
            threads, rss, per_process = threads_and_rss(pids)
            self.samples += 1
            self.peak_threads = max(self.peak_threads, threads)
            self.peak_rss_mb = max(self.peak_rss_mb, rss)
            self.peak_rss_per_process_mb = max(self.peak_rss_per_process_mb, *per_process.values(), 0.0)
            self._stop.wait(self.interval)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
