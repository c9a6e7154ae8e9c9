"""Schema migrations: numbered steps per store, each applied once and recorded in the database.

The model is simonw/llm's `llm/migrations.py` (https://github.com/simonw/llm): an ordered list of
plain functions, and a table saying which have run. Here each store is a component ("ledger",
"subscribers") whose steps are numbered 1, 2, 3…; `schema_versions` holds one row per component
with the number of the last step applied. Opening a store runs the steps it lacks, in one
transaction under a lock (so two senders opening an old database at once migrate it once), on
SQLite and PostgreSQL alike. A database recorded at a higher number than this code knows was made
by a newer release and is refused rather than written to.

To add a step (a column, a table, an index): write a function below the component's last step,
decorated `@ledger_step(N)` or `@subscriber_step(N)` with the next number N, taking the
`Database`. Write the SQL once with `?` placeholders and the `Dialect` fragments
(`db.dialect.clock_type`…) where the two databases differ; the step runs inside the migration's
transaction. Never edit or renumber a step that has been released: a ledger made by that release
has it recorded as done. Add a case to tests/test_migrations.py.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from publisher.errors import ConfigError
from publisher.stores.addresses import RANK, canonical_email, new_uid
from publisher.stores.database import Database, number, text, whole

Step = Callable[[Database], None]
LEDGER: list[Step] = []  # step N is LEDGER[N - 1]
SUBSCRIBERS: list[Step] = []
COMPONENTS = {"ledger": LEDGER, "subscribers": SUBSCRIBERS}


def migrate(db: Database, component: str) -> None:
    """Apply the steps this database lacks, once, recording the last one in schema_versions."""
    steps = COMPONENTS[component]
    if recorded_version(db, component) == len(steps):
        return
    with db.transaction():
        db.lock("schema")  # one lock for every store: a database may hold them all
        db.execute(
            "CREATE TABLE IF NOT EXISTS schema_versions (component TEXT PRIMARY KEY,"
            " version INTEGER NOT NULL, applied_at DOUBLE PRECISION NOT NULL)"
        )
        current = recorded_version(db, component)  # again, under the lock: another may have won
        if current > len(steps):
            raise ConfigError(
                f"the {component} database is at schema version {current}, newer than this"
                f" release knows ({len(steps)})", where=db.where,
                fix="upgrade publisher to the release that wrote it",
            )
        for step in steps[current:]:
            step(db)
        if current < len(steps):
            db.execute(
                "INSERT INTO schema_versions (component, version, applied_at) VALUES (?, ?, ?)"
                " ON CONFLICT (component) DO UPDATE"
                " SET version = excluded.version, applied_at = excluded.applied_at",
                (component, len(steps), time.time()),
            )


def recorded_version(db: Database, component: str) -> int:
    """The last step applied to this database (0 when none is recorded yet)."""
    if "schema_versions" not in db.tables():
        return 0
    row = db.execute(
        "SELECT version FROM schema_versions WHERE component = ?", (component,)
    ).fetchone()
    return whole(row["version"]) if row else 0


def _numbered(steps: list[Step], number: int) -> Callable[[Step], Step]:
    """Register a step under its number; numbers follow each other with no gap."""

    def register(step: Step) -> Step:
        if number != len(steps) + 1:
            raise ValueError(f"{step.__name__}: step {number} follows step {len(steps)}")
        steps.append(step)
        return step

    return register


def ledger_step(number: int) -> Callable[[Step], Step]:
    """Decorator: step `number` of the ledger's schema."""
    return _numbered(LEDGER, number)


def subscriber_step(number: int) -> Callable[[Step], Step]:
    """Decorator: step `number` of the subscriber store's schema."""
    return _numbered(SUBSCRIBERS, number)


def script(db: Database, sql: str) -> None:
    """Run each statement of a schema script (inside the caller's transaction)."""
    for statement in sql.split(";"):
        if statement.strip():
            db.execute(statement)


def add_column(db: Database, table: str, column: str, definition: str) -> None:
    """Add a column unless an older release already did (their tables have no version)."""
    if column not in db.columns(table):
        db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")


# -- the ledger -------------------------------------------------------------------------------


@ledger_step(1)
def deliveries_and_locks(db: Database) -> None:
    """One row per (edition, channel, item), and a send lock per post (as the first releases)."""
    script(db, f"""
CREATE TABLE IF NOT EXISTS deliveries (
    edition TEXT NOT NULL,
    post TEXT NOT NULL,
    channel TEXT NOT NULL,
    item TEXT NOT NULL,
    batch TEXT NOT NULL DEFAULT '',
    state TEXT NOT NULL CHECK (state IN ('pending', 'sent', 'failed')),
    provider_id TEXT NOT NULL DEFAULT '',
    url TEXT NOT NULL DEFAULT '',
    extra TEXT NOT NULL DEFAULT '{{}}',
    error TEXT NOT NULL DEFAULT '',
    attempts INTEGER NOT NULL DEFAULT 0,
    updated_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (edition, channel, item)
);
CREATE INDEX IF NOT EXISTS deliveries_by_post ON deliveries (post, edition);
CREATE TABLE IF NOT EXISTS locks (
    post TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    heartbeat {db.dialect.clock_type} NOT NULL
)""")


@ledger_step(2)
def failure_kinds(db: Database) -> None:
    """What kind of failure a failed row records ('' in older ledgers: counted transient)."""
    add_column(db, "deliveries", "failure", "TEXT NOT NULL DEFAULT ''")


@ledger_step(3)
def actions(db: Database) -> None:
    """What the editor did besides delivering: channels left out, proofs, edits, retractions."""
    script(db, """
CREATE TABLE IF NOT EXISTS actions (
    edition TEXT NOT NULL,
    post TEXT NOT NULL,
    channel TEXT NOT NULL,
    item TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('skip', 'proof', 'edit', 'retract')),
    target TEXT NOT NULL DEFAULT '',
    state TEXT NOT NULL CHECK (state IN ('pending', 'done', 'failed')),
    error TEXT NOT NULL DEFAULT '',
    updated_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (edition, channel, item, kind, target)
);
CREATE INDEX IF NOT EXISTS actions_by_post ON actions (post, kind)""")


@ledger_step(4)
def batches(db: Database) -> None:
    """Numbered ranges of subscriber ids, so several senders can share one email send."""
    script(db, f"""
CREATE TABLE IF NOT EXISTS batches (
    edition TEXT NOT NULL,
    channel TEXT NOT NULL,
    number INTEGER NOT NULL,
    first_id BIGINT NOT NULL,
    last_id BIGINT NOT NULL,
    state TEXT NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'claimed', 'done')),
    owner TEXT NOT NULL DEFAULT '',
    host TEXT NOT NULL DEFAULT '',
    pid INTEGER NOT NULL DEFAULT 0,
    heartbeat {db.dialect.clock_type},
    PRIMARY KEY (edition, channel, number)
)""")


# -- the subscriber list ----------------------------------------------------------------------


@subscriber_step(1)
def subscribers_table(db: Database) -> None:
    """The original table (a no-op on stores made before migrations were recorded)."""
    script(db, f"""
CREATE TABLE IF NOT EXISTS subscribers (
    id {db.dialect.serial_key},
    email TEXT NOT NULL,
    name TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL DEFAULT 'subscribed'
        CHECK (status IN ('subscribed', 'unsubscribed', 'bounced', 'complained')),
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX IF NOT EXISTS subscribers_by_status ON subscribers (status, id)""")


@subscriber_step(2)
def match_keys(db: Database) -> None:
    """Match key, token id, status reason and time; merge rows one canonical address shares."""
    for column in ("key TEXT", "uid TEXT", "reason TEXT NOT NULL DEFAULT ''",
                   "status_at DOUBLE PRECISION"):
        db.execute(f"ALTER TABLE subscribers ADD COLUMN {column}")
    rows = db.execute(
        "SELECT id, email, name, status, updated_at FROM subscribers ORDER BY id"
    ).fetchall()
    keep: dict[str, tuple[int, str, str, float]] = {}
    drop: list[tuple[int]] = []
    for row in rows:
        row_id, name = whole(row["id"]), text(row["name"])
        status, at = text(row["status"]), number(row["updated_at"])
        key = canonical_email(text(row["email"]))
        first = keep.get(key)
        if first is None:
            keep[key] = (row_id, name, status, at)
            continue
        drop.append((row_id,))  # a case or script variant ASCII-only matching let in twice
        strongest = status if RANK[status] > RANK[first[2]] else first[2]
        keep[key] = (first[0], first[1] or name, strongest, max(first[3], at))
    db.executemany("DELETE FROM subscribers WHERE id = ?", drop)
    db.executemany(
        "UPDATE subscribers SET key = ?, uid = ?, name = ?, status = ?, status_at = ?"
        " WHERE id = ?",
        ((key, new_uid(), name, status, at, row_id)
         for key, (row_id, name, status, at) in keep.items()),
    )
    db.execute("CREATE UNIQUE INDEX subscribers_key ON subscribers (key)")
    db.execute("CREATE UNIQUE INDEX subscribers_uid ON subscribers (uid)")
    db.execute("DROP INDEX IF EXISTS subscribers_email")  # PostgreSQL's lower(email) rule


@ledger_step(5)
def feed_tables(db: Database) -> None:
    """Which feed items were published, and each feed's HTTP validators (see stores/feeds.py)."""
    script(db, """
CREATE TABLE IF NOT EXISTS feed_sources (
    feed TEXT PRIMARY KEY,
    etag TEXT NOT NULL DEFAULT '',
    last_modified TEXT NOT NULL DEFAULT '',
    updated_at DOUBLE PRECISION NOT NULL
);
CREATE TABLE IF NOT EXISTS feed_items (
    feed TEXT NOT NULL,
    guid TEXT NOT NULL,
    post TEXT NOT NULL,
    edition TEXT NOT NULL DEFAULT '',
    state TEXT NOT NULL CHECK (state IN ('pending', 'published', 'passed')),
    updated_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (feed, guid)
);
CREATE INDEX IF NOT EXISTS feed_items_by_post ON feed_items (post)""")


@ledger_step(6)
def schedules_table(db: Database) -> None:
    """Where each output of a `--at` edition waits: at its provider or queued (schedules.py)."""
    script(db, """
CREATE TABLE IF NOT EXISTS schedules (
    edition TEXT NOT NULL,
    post TEXT NOT NULL,
    source TEXT NOT NULL,
    output TEXT NOT NULL,
    channel TEXT NOT NULL,
    at TEXT NOT NULL,
    mode TEXT NOT NULL CHECK (mode IN ('provider', 'queued')),
    state TEXT NOT NULL CHECK (state IN ('scheduled', 'sent', 'cancelled')),
    handle TEXT NOT NULL DEFAULT '',
    reason TEXT NOT NULL DEFAULT '',
    nonce TEXT NOT NULL DEFAULT '',
    updated_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (edition, output)
);
CREATE INDEX IF NOT EXISTS schedules_by_state ON schedules (state, at)""")


@ledger_step(7)
def batch_deliveries(db: Database) -> None:
    """One row per provider call where the call sends a whole batch (SendGrid, Postmark, Resend).

    `ids` holds the members' subscriber ids, ascending and delta-encoded, `items` their addresses
    in the same order, one per line; a row is named by its key and its lowest id. Per-recipient
    `deliveries` rows still hold every other channel, older sends, and the members a call
    refused or left unanswered.
    """
    script(db, """
CREATE TABLE IF NOT EXISTS batch_deliveries (
    edition TEXT NOT NULL,
    post TEXT NOT NULL,
    channel TEXT NOT NULL,
    batch TEXT NOT NULL,
    first_id BIGINT NOT NULL,
    last_id BIGINT NOT NULL,
    size INTEGER NOT NULL,
    ids TEXT NOT NULL,
    items TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'sent', 'failed')),
    provider_id TEXT NOT NULL DEFAULT '',
    provider_ids TEXT NOT NULL DEFAULT '',
    error TEXT NOT NULL DEFAULT '',
    failure TEXT NOT NULL DEFAULT '',
    attempts INTEGER NOT NULL DEFAULT 0,
    updated_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (edition, channel, batch, first_id)
);
CREATE INDEX IF NOT EXISTS batch_deliveries_by_ids
    ON batch_deliveries (edition, channel, last_id, first_id);
CREATE INDEX IF NOT EXISTS batch_deliveries_by_post ON batch_deliveries (post, edition)""")
