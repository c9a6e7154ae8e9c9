"""The one error tree of publisher; every error the CLI can show is one of these.

    PublisherError                      exit 1  anything else we raise on purpose
    ├── InputError                      exit 2  the article or a command-line value is wrong
    ├── ConfigError                     exit 3  publisher.toml, a template or a secret is wrong;
    │   │                                       also a credential refused at preflight
    │   └── SystemFault                         the machine refused: a port in use, a full or
    │                                           unwritable disk, no keyring backend
    ├── DeliveryError                   exit 4  a channel could not deliver
    │   ├── TransientDeliveryError              worth retrying: timeout, 5xx, 429 (has retry_after)
    │   └── PermanentDeliveryError              not worth retrying: auth, validation, rejected
    ├── LedgerConflict                  exit 5  the ledger forbids this send (changed post, busy)
    └── LintFailed                      exit 6  `publish lint` found errors

    (no error)                          exit 4  `publish` finished, but recipients or posts were
                                                refused, failed or given up (one stderr line
                                                per channel, reasons grouped)
    (no error)                          exit 7  `publish` finished, but deliveries are uncertain
                                                (an answer lost now, or a run that stopped):
                                                see `publish status`, resend: --retry-pending

Each error renders as one line: ``<where>: <problem> — <fix>``. Channels raise delivery errors
(never return False) and re-raise provider errors with ``raise … from exc``.
"""

from __future__ import annotations


class PublisherError(Exception):
    """Base of every error publisher raises on purpose; carries a location and a fix."""

    exit_code = 1

    def __init__(self, problem: str, *, where: str = "", fix: str = "") -> None:
        self.problem = problem
        self.where = where
        self.fix = fix
        super().__init__(self.one_line())

    def one_line(self) -> str:
        """The single line the CLI prints on stderr."""
        head = f"{self.where}: {self.problem}" if self.where else self.problem
        return f"{head} — {self.fix}" if self.fix else head


class InputError(PublisherError):
    """The article file or a command-line value is unusable."""

    exit_code = 2


class ConfigError(PublisherError):
    """Configuration, templates or credentials are missing or invalid."""

    exit_code = 3


class SystemFault(ConfigError):
    """An ordinary fault of the machine, not a bug: port in use, disk full, folder not writable."""


def os_fault(exc: OSError, *, doing: str, where: str, fix: str) -> SystemFault:
    """An OSError as one line: what we were doing, the system's own words, and a fix."""
    reason = exc.strerror or exc.__class__.__name__
    return SystemFault(f"cannot {doing}: {reason}", where=where, fix=fix)


class DeliveryError(PublisherError):
    """A channel failed to deliver."""

    exit_code = 4


class TransientDeliveryError(DeliveryError):
    """A failure that may succeed later.

    ``retry_after`` is the server's hint in seconds; ``maybe_delivered`` is true when the request
    left us but no answer came back (a timeout or dropped connection), so it may have landed.
    ``retry_now`` false: this run already retried the cause (a post's image, fetched once for
    every network), so only the next run tries again.
    """

    def __init__(
        self,
        problem: str,
        *,
        where: str = "",
        fix: str = "",
        retry_after: float | None = None,
        maybe_delivered: bool = False,
        retry_now: bool = True,
    ) -> None:
        self.retry_after = retry_after
        self.maybe_delivered = maybe_delivered
        self.retry_now = retry_now
        super().__init__(problem, where=where, fix=fix)


class PermanentDeliveryError(DeliveryError):
    """A failure that will not go away by retrying: bad credentials, rejected content."""


class LedgerConflict(PublisherError):
    """The ledger refuses the send: the post changed since it was sent, or another run is busy."""

    exit_code = 5


class LintFailed(PublisherError):
    """`publish lint` found at least one error."""

    exit_code = 6
