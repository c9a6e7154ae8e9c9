"""Two senders sharing one send through PostgreSQL (`--join`) against one sender (issue 18).

Target: 1,000,000 subscribers through `publish POST --join` with 2 senders on PostgreSQL take
≤ 0.6 × the single sender's wall time, with 0 duplicates. The bench starts a throwaway
PostgreSQL cluster of its own (initdb + pg_ctl from /usr/lib/postgresql/*/bin, 127.0.0.1, a free
port, fsync off; stopped and removed at the end), seeds N subscribers by COPY into a template
database (not counted), then sends the same edition twice, each time to a fresh copy of that
database (a fresh ledger): once by one `publish POST`, once by two `publish POST --join` started
together. Each send goes to a fresh SendGrid fake in its own process (`_fake.py sendgrid-lean`),
which counts requests, deliveries and duplicates. Printed: single vs joined wall time and their
ratio, each sender's own CPU (user + system, its wait4()) and share of the recipients, the
fake's own CPU, PostgreSQL's own CPU (the postmaster's and its children's, from /proc), and the
load average. 2 senders + PostgreSQL + the fake share the machine's cores, so on 2 cores the
joined run can only approach half the single time when the senders' CPU dominates.
`--rows N` changes the size, `--rounds K` alternates single and joined K times (medians),
`--src DIR` runs the CLI from another source tree (before/after in one session); the CLI
runs as installed, bytecode compiled once (`--bytecode source` compiles from source each run);
`--statements` prints each send's costliest statements and their calls per batch
(pg_stat_statements), to see the round trips and where the server's time goes.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _common import (
    JAPANESE_SAMPLE,
    REPO,
    Result,
    Usage,
    load,
    publish_argv,
    report,
)
from fanout_sendgrid import BATCH, FakeProcess

TARGET_RATIO = 0.6
USER = "publisher"
ENV = {"SENDGRID_API_KEY": "SG.bench-key",
       "PUBLISHER_UNSUBSCRIBE_SECRET": "bench-secret-0123456789abcdef"}
TICKS = os.sysconf("SC_CLK_TCK")


class Cluster:
    """A throwaway PostgreSQL cluster in a temporary folder, for this bench only."""

    def __init__(self, *, statements: bool = False) -> None:
        candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), reverse=True)
        found = shutil.which("initdb") or (str(candidates[0]) if candidates else "")
        if not found:
            raise SystemExit("no PostgreSQL server binaries (/usr/lib/postgresql/*/bin)")
        self.bindir = Path(found).parent
        self.root = Path(tempfile.mkdtemp(prefix="bench-pg-"))
        self.data = self.root / "data"
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root: the postgres account runs it
            import pwd

            owner = pwd.getpwnam("postgres")
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = int(probe.getsockname()[1])
        self._server([str(self.bindir / "initdb"), "-D", str(self.data), "-U", USER,
                      "--auth=trust", "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync"])
        options = (f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1"
                   " -c fsync=off -c max_wal_size=4GB")
        if statements:  # per-statement counts and times, for --statements
            options += " -c shared_preload_libraries=pg_stat_statements"
        self._server([str(self.bindir / "pg_ctl"), "-D", str(self.data), "-o", options,
                      "-l", str(self.root / "server.log"), "-w", "start"])
        self.postmaster = int((self.data / "postmaster.pid").read_text().split()[0])

    def _server(self, command: list[str]) -> None:
        """Run a server binary (as `postgres` when we are root); a failure stops the bench."""
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, text=True)

    def url(self, database: str) -> str:
        """A postgresql:// URL without a password (trust on 127.0.0.1), as publisher.toml holds."""
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{database}"

    def admin(self, sql: str, database: str = "postgres") -> None:
        """One statement (on the maintenance database unless told), outside a transaction."""
        import psycopg

        with psycopg.connect(self.url(database), autocommit=True) as db:
            db.execute(sql.encode())  # our own SQL, not a literal psycopg can check

    def statements(self, database: str, calls_per: int) -> str:
        """The statements of one send that took the server longest: calls per batch, time."""
        import psycopg

        with psycopg.connect(self.url(database), autocommit=True) as db:
            rows = db.execute(
                "SELECT calls, total_exec_time, rows, query FROM pg_stat_statements"
                " WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
                " ORDER BY total_exec_time DESC LIMIT 15").fetchall()
        return "\n".join(
            f"  {calls / calls_per:6.2f} per batch {total / 1000:7.2f} s {count:>9} rows  "
            + " ".join(str(query).split())[:150] for calls, total, count, query in rows)

    def cpu(self) -> float:
        """CPU seconds the server has used: the postmaster, its exited children (backends of
        closed connections) and its living children (checkpointer, WAL writer, backends)."""
        fields = _stat(self.postmaster)
        total = sum(int(f) for f in fields[11:15])  # utime, stime, cutime, cstime
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit() and int(entry.name) != self.postmaster:
                try:
                    child = _stat(int(entry.name))
                except OSError:
                    continue
                if int(child[1]) == self.postmaster:  # ppid
                    total += int(child[11]) + int(child[12])
        return total / TICKS

    def stop(self) -> None:
        """Stop the server and remove its folder."""
        self._server([str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate",
                      "stop"])
        shutil.rmtree(self.root, ignore_errors=True)


def _queued(pid: int) -> dict[int, float]:
    """Seconds each thread of a process has spent runnable but waiting for a CPU."""
    waited: dict[int, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            waited[int(task.name)] = int((task / "schedstat").read_text().split()[1]) / 1e9
    return waited


def _stat(pid: int) -> list[str]:
    """/proc/PID/stat from the field after the command name: [state, ppid, …]."""
    raw = Path(f"/proc/{pid}/stat").read_text()
    return raw[raw.rindex(")") + 2:].split()


def seed(cluster: Cluster, database: str, count: int, *, statements: bool = False,
         src: str = "") -> None:
    """A database whose tables the product (of `src`, if given) created, with `count`
    subscribers by one COPY."""
    import psycopg

    sys.path.insert(0, src or str(REPO / "src"))
    from publisher.stores.addresses import new_uid
    from publisher.stores.postgres import PostgresLedger, PostgresSubscriberStore

    cluster.admin(f'CREATE DATABASE "{database}"')
    url = cluster.url(database)
    if statements:
        with psycopg.connect(url, autocommit=True) as db:
            db.execute("CREATE EXTENSION pg_stat_statements")
    PostgresSubscriberStore(url).close()  # the schemas exactly as the product makes them
    PostgresLedger(url).close()
    now = time.time()
    columns = "email, key, uid, name, status, reason, status_at, created_at, updated_at"
    with (psycopg.connect(url) as db, db.cursor() as cursor,
          cursor.copy(f"COPY subscribers ({columns}) FROM STDIN") as copy):
        for i in range(count):  # an ASCII address is its own key, as the store writes it
            email = f"reader{i:07d}@example.org"
            copy.write_row((email, email, new_uid(), f"読者 {i}" if i % 3 == 0 else "",
                            "subscribed", "imported", now, now, now))
    with psycopg.connect(url, autocommit=True) as db:
        db.execute("VACUUM ANALYZE subscribers")


def write_config(folder: Path, url: str, database: str) -> Path:
    """publisher.toml: ledger and subscribers in PostgreSQL, the newsletter through the fake."""
    config = folder / "publisher.toml"
    config.write_text(
        f'ledger = "{database}"\nsubscribers = "{database}"\n'
        f'outbox = "{folder / "outbox"}"\n'
        '[site]\nname = "Bench News"\nurl = "https://news.bench.example"\n'
        'address = "3 Bench Road, Springfield 00000"\nfrom = "Bench News <news@bench.example>"\n'
        '[newsletter]\ntransport = "sendgrid"\n'
        f'[channels.sendgrid]\nbase_url = "{url}"\n',
        encoding="utf-8",
    )
    return config


def sent_by(stdout: str) -> int:
    """How many recipients a sender reported as new on its sendgrid summary line."""
    lines = [line for line in stdout.splitlines() if "sendgrid" in line]
    found = re.search(r"(\d+) new", lines[0]) if lines else None
    return int(found.group(1)) if found else 0


@dataclass
class Send:
    """One send: its wall time, each sender's own use, the fake's counts and CPU, the server's."""

    senders: int
    wall: float
    used: list[Usage]
    stats: dict[str, Any]
    fake_cpu: float
    pg_cpu: float
    load: str
    queued: dict[str, float]  # seconds each kind of process waited for a CPU

    @property
    def cpu(self) -> float:
        """Everything the send cost the machine: the senders, the server and the fake."""
        return sum(u.cpu for u in self.used) + self.pg_cpu + self.fake_cpu

    @property
    def requests(self) -> int:
        """mail/send calls the fake answered."""
        return int(self.stats["routes"].get("POST /v3/mail/send", 0))


class Waits:
    """How long processes waited for a CPU (on the run queue), from /proc/PID/schedstat
    sampled until each exits: on a shared machine, the time other work took from them."""

    def __init__(self, postmaster: int, database: str) -> None:
        self.postmaster, self.backend = postmaster, f"postgres: {USER} {database} "
        self.pids: dict[int, str] = {}  # pid → "sender", "fake" or "postgres"
        self.queued: dict[tuple[int, int], float] = {}  # (pid, thread) → seconds
        self.since: dict[tuple[int, int], float] = {}  # its wait when watching began
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()

    def watch(self, pid: int, kind: str) -> None:
        """Count this process's waits from now on."""
        self.pids[pid] = kind
        self.since.update(((pid, tid), t) for tid, t in _queued(pid).items())

    def _sample(self) -> None:
        """Find the send's server backends; keep the latest run-queue time of each pid."""
        while not self.done.wait(0.1):
            for entry in Path("/proc").iterdir():
                if entry.name.isdigit() and int(entry.name) not in self.pids:
                    with contextlib.suppress(OSError, IndexError):
                        if (int(_stat(int(entry.name))[1]) == self.postmaster and self.backend
                                in (entry / "cmdline").read_bytes().decode(errors="replace")):
                            self.pids[int(entry.name)] = "postgres"
            for pid in list(self.pids):
                with contextlib.suppress(OSError):
                    self.queued.update(((pid, tid), t - self.since.get((pid, tid), 0.0))
                                       for tid, t in _queued(pid).items())

    def total(self, kind: str) -> float:
        """Seconds the processes of one kind waited for a CPU."""
        self.done.set()
        self.thread.join()
        return sum(t for (pid, _), t in self.queued.items() if self.pids[pid] == kind)


def run_senders(argvs: list[list[str]], cwd: Path, waits: Waits) -> list[Usage]:
    """Start every sender at once; each one's own use from its own wait4()."""
    env = {**os.environ, **ENV}
    results: list[Usage | None] = [None] * len(argvs)
    failures: list[str] = []
    start = threading.Barrier(len(argvs))

    def one(index: int) -> None:
        start.wait()
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            began = time.perf_counter()
            child = subprocess.Popen(argvs[index], cwd=cwd, env=env, stdout=out, stderr=err)
            waits.pids[child.pid] = "sender"
            _, status, usage = os.wait4(child.pid, 0)
            wall = time.perf_counter() - began
            out.seek(0)
            err.seek(0)
            stdout, stderr = out.read().decode(), err.read().decode()
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            failures.append(f"{' '.join(argvs[index])} failed ({code}):\n{stderr[-3000:]}")
        results[index] = Usage(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss * 1024,
                               stdout, stderr)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(argvs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise SystemExit("\n".join(failures))
    return [r for r in results if r is not None]


def send(cluster: Cluster, template: str, senders: int, number: int, src: str, *,
         statements: bool = False, cached: bool = True) -> Send:
    """One send of the edition to a fresh copy of the seeded database by `senders` processes."""
    database = f"run{number}"
    cluster.admin(f'CREATE DATABASE "{database}" TEMPLATE "{template}" STRATEGY FILE_COPY')
    try:
        with tempfile.TemporaryDirectory() as tmp, fake_process() as fake:
            folder = Path(tmp)
            config = write_config(folder, fake.address, cluster.url(database))
            argv = [*publish_argv(src, cached=cached), str(JAPANESE_SAMPLE),
                    "--config", str(config)]
            argvs = [argv] if senders == 1 else [[*argv, "--join"]] * senders
            time.sleep(0.5)  # the template copy's writes settle before the clock starts
            if statements:
                cluster.admin("SELECT pg_stat_statements_reset()", database)
            fake_before, pg_before = fake.stats()["cpu"], cluster.cpu()
            waits = Waits(cluster.postmaster, database)
            waits.watch(fake.child.pid, "fake")
            started = time.perf_counter()
            used = run_senders(argvs, folder, waits)
            wall = time.perf_counter() - started
            queued = {kind: waits.total(kind) for kind in ("sender", "postgres", "fake")}
            time.sleep(0.5)  # the closed connections' backends exit and are counted
            stats, pg_after = fake.stats(), cluster.cpu()
            if statements:
                batches = max(1, int(stats["routes"].get("POST /v3/mail/send", 0)))
                print(f"statements of the {senders}-sender send:\n"
                      + cluster.statements(database, batches), file=sys.stderr, flush=True)
    finally:
        cluster.admin(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    fake_cpu = stats.pop("cpu") - fake_before
    return Send(senders, wall, used, stats, fake_cpu, pg_after - pg_before, load(), queued)


@contextmanager
def fake_process() -> Iterator[FakeProcess]:
    """A fresh lean SendGrid fake in its own process, so each send's counts are its own."""
    fake = FakeProcess("sendgrid-lean")
    try:
        yield fake
    finally:
        fake.stop()


def exact(run: Send, count: int) -> bool:
    """Everyone once, in exactly ⌈N/1000⌉ requests."""
    return (run.requests == math.ceil(count / BATCH) and run.stats["distinct"] == count
            and run.stats["deliveries"] == count and run.stats["duplicates"] == 0)


def describe(run: Send) -> str:
    """One send in a few words: wall, each sender's CPU and share, the fake's and server's CPU."""
    senders = ", ".join(f"{u.cpu:.1f} s CPU / {sent_by(u.stdout):,} sent / {u.wall:.1f} s wall"
                        for u in run.used)
    return (f"{run.wall:.1f} s wall (sender{'s' if run.senders > 1 else ''}: {senders};"
            f" PostgreSQL {run.pg_cpu:.1f} s CPU; fake {run.fake_cpu:.1f} s CPU;"
            f" {run.requests} requests, {run.stats['deliveries']:,} delivered,"
            f" {run.stats['duplicates']} duplicates; waited for a CPU: sender"
            f"{'s' if run.senders > 1 else ''} {run.queued['sender']:.1f} s, PostgreSQL"
            f" {run.queued['postgres']:.1f} s, fake {run.queued['fake']:.1f} s; load {run.load})")


def main() -> None:
    """Seed once, alternate single and joined sends, report the ratio of their wall times."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--src", default="")
    parser.add_argument("--bytecode", choices=("cached", "source"), default="cached")
    parser.add_argument("--statements", action="store_true",
                        help="print each send's costliest statements (pg_stat_statements)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    cluster = Cluster(statements=args.statements)
    try:
        started = time.perf_counter()
        seed(cluster, "seeded", args.rows, statements=args.statements, src=args.src)
        seeded = time.perf_counter() - started
        runs: list[tuple[Send, Send]] = []
        cached = args.bytecode == "cached"
        for k in range(args.rounds):
            single, joined = (send(cluster, "seeded", senders, 2 * k + senders - 1, args.src,
                                   statements=args.statements, cached=cached)
                              for senders in (1, 2))
            runs.append((single, joined))
            print(f"round {k + 1}: single {describe(single)}; joined {describe(joined)}",
                  file=sys.stderr, flush=True)
    finally:
        cluster.stop()
    single_wall = statistics.median(s.wall for s, _ in runs)
    joined_wall = statistics.median(j.wall for _, j in runs)
    ratio = joined_wall / single_wall
    all_exact = all(exact(s, args.rows) and exact(j, args.rows) for s, j in runs)
    single, joined = runs[-1]
    loads = " ".join(f"{x:.1f}" for x in os.getloadavg())
    cores = os.cpu_count() or 1
    # On idle cores one sender runs in turn with its server backend and the fake (one core at a
    # time); two senders could at best spread their work over every core.
    joined_cpu = statistics.median(j.cpu for _, j in runs)
    single_cpu = statistics.median(s.cpu for s, _ in runs)
    bound = joined_cpu / min(cores, 4) / single_cpu
    report([Result(
        name=f"{args.rows:,} subscribers through --join, 2 senders on PostgreSQL",
        measured=f"joined {joined_wall:.1f} s wall: {describe(joined)}",
        target=f"≤ {TARGET_RATIO} × the single sender's time, 0 duplicates",
        met=ratio <= TARGET_RATIO and all_exact,
        baseline=f"one sender {single_wall:.1f} s wall: {describe(single)}",
        ratio=f"{ratio:.2f}×",
        notes=f"{args.rounds} round(s), medians of wall time;"
              f" {'bytecode cached, as installed' if cached else 'compiled from source'};"
              f" each send to a fresh copy of the seeded database and a fresh lean SendGrid"
              f" fake, duplicates counted at the fake;"
              f" exact: {all_exact}; 2 senders + PostgreSQL + the fake share {cores}"
              f" cores; load average now {loads}; on idle cores the ratio could at best be"
              f" {bound:.2f}× (the joined send's CPU, {joined_cpu:.0f} s, over {min(cores, 4)}"
              f" cores, against the single send's {single_cpu:.0f} s done one step at a time);"
              f" seeding {seeded:.0f} s not counted",
    )])


if __name__ == "__main__":
    main()
