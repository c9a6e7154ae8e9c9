"""The embedded default channel: a local folder that receives every output as files.

It needs no account and no server, so a first `publish` works anywhere; the ledger still records
each file as a delivery, so a second run writes nothing twice.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from contextlib import suppress
from datetime import UTC, datetime
from email.utils import make_msgid
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Self

from publisher.channels import BatchResult, ChannelContext, EmailBatch, Facts, Hints, Receipt
from publisher.channels.message import MessageBuilder
from publisher.config.settings import Site
from publisher.errors import ConfigError, os_fault
from publisher.model import Edition, SocialPost
from publisher.source.faq import jsonld_text

if TYPE_CHECKING:
    from publisher.channels.images import ImageLoader

NAME = "outbox"


class Outbox:
    """Writes the newsletter as .eml and each social post as a text file under one folder."""

    # Rewriting the same file cannot duplicate anything; it rewrites or removes its files.
    facts: ClassVar[Facts] = Facts(kind="both", batch_size=50, idempotent=True, can_edit=True,
                                   can_delete=True)
    name = NAME

    def __init__(self, folder: Path, site: Site) -> None:
        self.folder = folder
        self.site = site
        self.batch_size = self.facts.batch_size

    @classmethod
    def from_config(cls, context: ChannelContext) -> Self:
        """The folder from the context's `folder` setting (the run's outbox folder)."""
        return cls(Path(context.settings.text("folder", "outbox")), context.site)

    def preflight(self) -> Hints:
        """The folder must be creatable and writable."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(
                f"cannot create the outbox ({exc.strerror})",
                where=str(self.folder),
                fix="choose another folder with --out",
            ) from exc
        return {}

    def send_batch(self, batch: EmailBatch) -> BatchResult:
        """Write one .eml per recipient; the first is newsletter.eml."""
        domain = self.site.sender.rpartition("@")[2].strip("> ") or "localhost"
        builder = MessageBuilder(
            batch.newsletter, self.site, lang=batch.lang, list_id=self.site.list_id,
            message_id_domain=domain,
        )
        accepted: dict[str, str] = {}
        for recipient in batch.recipients:
            message_id = make_msgid(idstring=batch.key[:16], domain=domain)
            data = builder.build(recipient, date=datetime.now(UTC), message_id=message_id)
            path = self.folder / (proof_name(recipient.email) if batch.proof
                                  else eml_name(recipient.email, first=not accepted))
            write_atomic(path, data)
            accepted[recipient.email] = str(path)
        return BatchResult(accepted=accepted)

    def prepare_media(self, post: SocialPost, *, key: str, images: ImageLoader | None = None
                      ) -> None:
        """The outbox writes text only; never asked (facts.attaches_images is false)."""

    def send_post(
        self,
        post: SocialPost,
        *,
        key: str,
        reply_to: Receipt | None,
        root: Receipt | None,
        attempted_before: bool = False,
    ) -> Receipt:
        """Write the post's text where an editor can copy it from."""
        path = self.folder / "social" / f"{post.network}-{post.position}.txt"
        write_atomic(path, post.text.encode())
        return Receipt(provider_id=str(path), url=path.resolve().as_uri())

    def edit_post(self, receipt: Receipt, post: SocialPost, *, attempted_before: bool) -> bool:
        """Rewrite the post's file with the corrected text."""
        path = Path(receipt.provider_id)
        if path.is_file() and path.read_bytes() == post.text.encode():
            return False
        write_atomic(path, post.text.encode())
        return True

    def delete_post(self, receipt: Receipt, *, attempted_before: bool) -> bool:
        """Remove the post's file; False when it is gone already."""
        path = Path(receipt.provider_id)
        if not path.is_file():
            return False
        path.unlink()
        return True

    def close(self) -> None:
        """Nothing to release."""


def eml_name(email: str, *, first: bool) -> str:
    """newsletter.eml for the first recipient, newsletter-<address>.eml for the rest."""
    return "newsletter.eml" if first else f"newsletter-{email.replace('/', '_')}.eml"


def proof_name(email: str) -> str:
    """proof-<address>.eml: a --proof copy, beside (never instead of) the edition's files."""
    return f"proof-{email.replace('/', '_')}.eml"


def write_artifacts(folder: Path, edition: Edition, edition_data: Mapping[str, Any], *,
                    faq: bool = True) -> list[Path]:
    """Keep the edition's pure outputs beside the deliveries (rewritten identically each run).

    faq=False (`--skip faq`) leaves the FAQ digest files out.
    """
    files = {
        "edition.json": json.dumps(edition_data, ensure_ascii=False, indent=2) + "\n",
        "newsletter.html": edition_data["newsletter"]["html"],
        "newsletter.txt": edition_data["newsletter"]["text"],
    }
    if faq:
        files.update({
            "faq.md": edition.faq.markdown,
            "faq.html": edition.faq.html,
            "faq.jsonld": jsonld_text(edition.faq.jsonld),
        })
    written = []
    for name, content in files.items():
        write_atomic(folder / name, content.encode())
        written.append(folder / name)
    return written


def write_atomic(path: Path, data: bytes) -> None:
    """Write through a temporary file so a crash never leaves half a file.

    A folder that cannot be written (permissions, a read-only or full disk) is a SystemFault
    naming the file, never an internal error; no half-written temporary file is left behind.
    """
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary.write_bytes(data)
        os.replace(temporary, path)
    except OSError as exc:
        with suppress(OSError):
            temporary.unlink(missing_ok=True)
        raise os_fault(exc, doing="write this file", where=str(path),
                       fix="free disk space or make the folder writable (or choose --out)"
                       ) from exc
