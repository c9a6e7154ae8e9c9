"""Shared helpers for the benchmarks: medians, child-process timing, result lines, seeding.

Benchmarks are not tests. Each script measures one target from issue 8 and prints one result
line (or, with --json, one JSON object that `run_all.py` turns into a table row).
"""

from __future__ import annotations

import atexit
import compileall
import functools
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
POSTS = REPO / "posts"
JAPANESE_SAMPLE = POSTS / "chuo-line-extension.md"
TESTS = REPO / "tests"


@dataclass
class Result:
    """One measured target: what, the number, the target, whether it was met, and the baseline."""

    name: str
    measured: str
    target: str
    met: bool
    baseline: str = ""
    ratio: str = ""
    notes: str = ""

    def line(self) -> str:
        """The human result line."""
        verdict = "MET" if self.met else "NOT MET"
        extra = f"; baseline {self.baseline}" if self.baseline else ""
        extra += f"; ratio {self.ratio}" if self.ratio else ""
        extra += f" ({self.notes})" if self.notes else ""
        return f"{self.name}: {self.measured} (target {self.target}) {verdict}{extra}"


def report(results: Sequence[Result]) -> None:
    """Print result lines, or JSON objects when --json was given."""
    for result in results:
        if "--json" in sys.argv:
            print(json.dumps(asdict(result), ensure_ascii=False))
        else:
            print(result.line())


def publish_exe() -> str:
    """The installed `publish` console script next to this interpreter."""
    beside = Path(sys.executable).with_name("publish")
    return str(beside) if beside.exists() else (shutil.which("publish") or "publish")


def wall_ms(argv: Sequence[str], *, cwd: Path | None = None, env: dict[str, str] | None = None,
            check: bool = True) -> float:
    """Wall time of one child process in milliseconds (output discarded)."""
    return child_ms(argv, cwd=cwd, env=env, check=check)[0]


def child_ms(argv: Sequence[str], *, cwd: Path | None = None, env: dict[str, str] | None = None,
             check: bool = True) -> tuple[float, float]:
    """(wall ms, CPU ms) of one child process: CPU (user + system, from its own wait4()) barely
    moves when other jobs load the machine, wall time does."""
    with tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        child = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(child.pid, 0)
        elapsed = (time.perf_counter() - start) * 1000
        code = os.waitstatus_to_exitcode(status)
        if check and code != 0:
            err.seek(0)
            raise SystemExit(f"{' '.join(argv)} failed ({code}): {err.read().decode()}")
    return elapsed, (usage.ru_utime + usage.ru_stime) * 1000


def interleaved_medians(commands: Mapping[str, Sequence[str]], runs: int, *,
                        cwd: Path | None = None, warmup: int = 2) -> dict[str, float]:
    """Median wall ms of each command, run round-robin so machine noise hits all alike."""
    return {name: wall for name, (wall, _) in
            interleaved_timings(commands, runs, cwd=cwd, warmup=warmup).items()}


def interleaved_timings(commands: Mapping[str, Sequence[str]], runs: int, *,
                        cwd: Path | None = None, warmup: int = 2) -> dict[str, tuple[float, float]]:
    """Median (wall ms, CPU ms) of each command, run round-robin."""
    for _ in range(warmup):
        for argv in commands.values():
            child_ms(argv, cwd=cwd, check=False)
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, argv in commands.items():
            times[name].append(child_ms(argv, cwd=cwd))
    return {
        name: (statistics.median(w for w, _ in values), statistics.median(c for _, c in values))
        for name, values in times.items()
    }


def median_seconds(call: Callable[[], Any], *, runs: int, warmup: int = 3) -> float:
    """Median wall seconds of an in-process call."""
    for _ in range(warmup):
        call()
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def run_measured(argv: Sequence[str], *, cwd: Path | None = None,
                 env: dict[str, str] | None = None) -> tuple[float, int, str, str]:
    """(wall seconds, peak RSS in bytes, stdout, stderr) of one child; RSS from its own wait4()."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        child = subprocess.Popen(argv, cwd=cwd, env=env, stdout=out, stderr=err)
        _, status, usage = os.wait4(child.pid, 0)
        elapsed = time.perf_counter() - start
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    if child.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({child.returncode}):\n{stderr[-3000:]}")
    return elapsed, usage.ru_maxrss * 1024, stdout, stderr


@dataclass
class Usage:
    """What one child process cost, from its own wait4(): wall, CPU (user + system), peak RSS."""

    wall: float
    cpu: float
    rss: int
    stdout: str
    stderr: str


def run_usage(argv: Sequence[str], *, cwd: Path | None = None,
              env: dict[str, str] | None = None) -> Usage:
    """Run one child to the end and return its own resource use; a failure stops the bench."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        child = subprocess.Popen(argv, cwd=cwd, env=env, stdout=out, stderr=err)
        _, status, usage = os.wait4(child.pid, 0)
        elapsed = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({code}):\n{stderr[-3000:]}")
    return Usage(elapsed, usage.ru_utime + usage.ru_stime, usage.ru_maxrss * 1024, stdout, stderr)


def compiled_copy(src: Path, folder: Path) -> Path:
    """A copy of a tree's src/publisher (and templates/ beside src/, where it looks for them)
    with its bytecode written beside it (py_compile writes even under PYTHONDONTWRITEBYTECODE)."""
    shutil.copytree(src.parent / "templates", folder / "templates")
    target = folder / "src" / "publisher"
    shutil.copytree(src / "publisher", target, ignore=shutil.ignore_patterns("__pycache__"))
    compileall.compile_dir(target, quiet=1)
    return target.parent


@functools.cache
def installed_src(src: str = "") -> str:
    """`src` (or this checkout's src/) compiled once into a throwaway copy: the CLI as
    `pip install` leaves it, with bytecode, not compiled from source on every run."""
    folder = Path(tempfile.mkdtemp(prefix="publisher-installed-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return str(compiled_copy(Path(src) if src else REPO / "src", folder))


def publish_argv(src: str = "", *, cached: bool = False) -> list[str]:
    """The `publish` command; with `src`, the same CLI importing `publisher` from that tree
    (a checkout of an older commit), so before and after run in one session; with `cached`,
    from a compiled copy of the tree (see `installed_src`)."""
    if cached:
        src = installed_src(src)
    if not src:
        return [publish_exe()]
    code = f"import sys; sys.path.insert(0, {src!r}); from publisher.cli.app import main; main()"
    return [sys.executable, "-c", code]


def load() -> str:
    """The 1-minute load average, to print beside wall times on a shared machine."""
    return f"{os.getloadavg()[0]:.1f}"


def seed_subscribers(path: Path, count: int) -> None:
    """A subscriber store with `count` active addresses, written in one transaction."""
    sys.path.insert(0, str(REPO / "src"))
    from publisher.stores.addresses import new_uid
    from publisher.stores.sqlite import SqliteSubscriberStore

    SqliteSubscriberStore(path).close()  # creates the schema exactly as the product does
    db = sqlite3.connect(path, isolation_level=None)
    now = time.time()
    db.execute("BEGIN")
    db.executemany(  # key and uid as the store writes them (an ASCII address is its own key)
        "INSERT INTO subscribers (email, key, uid, name, status, reason, status_at, created_at,"
        " updated_at) VALUES (?, ?, ?, ?, 'subscribed', 'imported', ?, ?, ?)",
        ((f"reader{i:07d}@example.org", f"reader{i:07d}@example.org", new_uid(),
          f"読者 {i}" if i % 3 == 0 else "", now, now, now) for i in range(count)),
    )
    db.execute("COMMIT")
    db.close()


def machine() -> str:
    """The facts a reader needs to compare numbers: cores and Python."""
    return f"{os.cpu_count()} cores, Python {sys.version.split()[0]}, {sys.platform}"
