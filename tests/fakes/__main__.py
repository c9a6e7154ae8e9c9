"""Run one fake on its own: `python -m fakes sendgrid|postmark|resend|smtp [--deliveries F.jsonl]`.

Run from tests/ (or with tests/ on PYTHONPATH). Prints the base URL (or SMTP port) on stdout,
then serves until killed, appending every delivery to the JSON-lines file when one is given.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path
from typing import Any

from .postmark import PostmarkFake
from .resend import ResendFake
from .sendgrid import SendGridFake
from .server import Faults
from .smtp import SmtpFake


def main(argv: list[str] | None = None) -> None:
    """Start the requested fake and block."""
    parser = argparse.ArgumentParser(prog="python -m fakes")
    parser.add_argument("provider", choices=["sendgrid", "postmark", "resend", "smtp"])
    parser.add_argument("--deliveries", type=Path, default=None)
    parser.add_argument("--key", default=None, help="the API key / server token to accept")
    parser.add_argument("--fault-rate", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--delay", type=float, default=0.0,
                        help="seconds to sleep after handling each HTTP request (crash tests)")
    args = parser.parse_args(argv)
    if args.provider == "smtp":
        smtp = SmtpFake(fault_rate=args.fault_rate, seed=args.seed,
                        deliveries_path=args.deliveries)
        with smtp.running():
            print(smtp.port, flush=True)
            threading.Event().wait()
        return
    kinds: dict[str, Any] = {"sendgrid": SendGridFake, "postmark": PostmarkFake,
                             "resend": ResendFake}
    extra = {} if args.key is None else {"api_key" if args.provider != "postmark"
                                         else "server_token": args.key}
    fake = kinds[args.provider](
        **extra, faults=Faults(rate=args.fault_rate, seed=args.seed),
        deliveries_path=args.deliveries, keep_bodies=False,
    )
    if args.delay > 0:
        fake.server.handle = _delayed(fake.server.handle, args.delay)
    with fake.running():
        print(fake.url, flush=True)
        threading.Event().wait()


def _delayed(handle: Any, seconds: float) -> Any:
    """A handler that answers `seconds` late, so a crash test's kill lands mid-request."""

    def slow(request: Any) -> Any:
        reply = handle(request)
        time.sleep(seconds)
        return reply

    return slow


if __name__ == "__main__":
    main(sys.argv[1:])
