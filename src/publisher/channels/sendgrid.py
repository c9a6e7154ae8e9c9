"""SendGrid v3 `POST /v3/mail/send`: one call per 1000 recipients, personalised provider-side.

The newsletter's HTML and text go once per call; each recipient is a personalization with its
own `substitutions` (name, unsubscribe link) and List-Unsubscribe headers
(https://www.twilio.com/docs/sendgrid/for-developers/sending-email/personalizations). Limits:
1000 personalizations and 1000 recipients per call
(https://www.twilio.com/docs/sendgrid/api-reference/mail-send/errors). A 202 carries
`X-Message-Id`, recorded as the provider id of every recipient of the call. Not idempotent: a
call retried after a lost answer can deliver twice.

Scheduling (`publish POST --at`): `send_at` is an integer UNIX time at most 72 hours ahead
(https://www.twilio.com/docs/sendgrid/for-developers/sending-email/scheduling-parameters). Every
call of one send carries the same `batch_id`, made once by `POST /v3/mail/batch`, so the whole
send can be cancelled by `POST /v3/user/scheduled_sends` `{batch_id, status: "cancel"}`
(https://www.twilio.com/docs/sendgrid/api-reference/cancel-scheduled-sends/cancel-or-pause-a-scheduled-send);
SendGrid refuses a cancel later than 10 minutes before `send_at`
(https://www.twilio.com/docs/sendgrid/api-reference/cancel-scheduled-sends).
"""

from __future__ import annotations

import hashlib
import html
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from email.utils import parseaddr
from functools import lru_cache
from operator import itemgetter
from typing import Any, ClassVar, Self

from publisher.channels import BatchResult, ChannelContext, EmailBatch, Facts, Hints
from publisher.channels.esp import (
    KNOWN_SETTINGS,
    batch_size,
    bearer_client,
    list_headers,
    sender,
    subject_for,
)
from publisher.channels.http import HttpClient
from publisher.channels.message import ONE_CLICK, list_id_value, list_unsubscribe_value
from publisher.config.settings import Site
from publisher.edition.newsletter import placeholders
from publisher.errors import PermanentDeliveryError
from publisher.model import Newsletter, Recipient, Recipients, emails_of
from publisher.schedule import Window

NAME = "sendgrid"
SECRETS = ("SENDGRID_API_KEY",)
BATCH_SIZE = 1000
BASE_URL = "https://api.sendgrid.com"  # EU subusers: https://api.eu.sendgrid.com
JSON_HEADERS = {"Content-Type": "application/json"}
_json = json.encoder.encode_basestring_ascii  # a str as JSON text, exactly as json.dumps writes it
_SLOT = re.compile(r"%%|%\((\w+)\)s")  # a `%`-template's escaped percent, or one named slot
# Where each named slot of a template takes its value from in the common case's tuple.
_FAST_SLOTS = {"email": 0, "name": 1, "name_html": 1, "unsubscribe": 2, "url": 3, "url_html": 3}


@dataclass(frozen=True)
class Content:
    """The newsletter with each placeholder replaced by a SendGrid substitution tag."""

    text: str
    html: str
    tags: tuple[tuple[str, str, str, bool], ...]  # (tag, key, default, html-escaped)


class SendGridChannel:
    """Email through SendGrid's v3 Mail Send API."""

    facts: ClassVar[Facts] = Facts(
        kind="email", batch_size=BATCH_SIZE, batch_call=True, secrets=SECRETS,
        schedule=Window(latest=timedelta(hours=72)),  # send_at, see the docstring
        docs="https://www.twilio.com/docs/sendgrid/api-reference/mail-send/mail-send",
    )
    name = NAME

    def __init__(self, http: HttpClient, site: Site, *, batch_size: int = BATCH_SIZE,
                 list_id: str = "") -> None:
        self.http = http
        self.site = site
        self.batch_size = batch_size
        self.list_id = list_id
        self.from_name, self.from_email = sender(site)
        self._pieces: tuple[tuple[object, ...], _Pieces] | None = None  # the last send's

    @classmethod
    def from_config(cls, context: ChannelContext) -> Self:
        """Build from [channels.sendgrid] (base_url, batch_size, timeout, list_id, api_key_env)."""
        settings = context.settings
        settings.allow((KNOWN_SETTINGS - {"message_stream"}) | {"webhook_public_key"})
        http = bearer_client(context, SECRETS[0], "sending through SendGrid", BASE_URL)
        return cls(http, context.site, batch_size=batch_size(settings, BATCH_SIZE),
                   list_id=settings.text("list_id"))

    def preflight(self) -> Hints:
        """A cheap authenticated call that also proves the key may send mail."""
        scopes = self.http.request("GET", "/v3/scopes").json().get("scopes", [])
        if "mail.send" not in scopes:
            raise PermanentDeliveryError(
                "the API key lacks the mail.send scope", where=NAME,
                fix="create a key with Mail Send access and set SENDGRID_API_KEY",
            )
        return {}

    def send_batch(self, batch: EmailBatch) -> BatchResult:
        """One mail/send call for the whole batch."""
        response = self.http.request("POST", "/v3/mail/send", data=self.encoded_body(batch),
                                     headers=JSON_HEADERS, ok=(200, 202))
        message_id = response.headers.get("X-Message-Id") or f"batch:{batch.key}"
        return BatchResult(accepted=dict.fromkeys(emails_of(batch.recipients), message_id))

    def encoded_body(self, batch: EmailBatch) -> bytes:
        """`body` as the JSON bytes a client would send, joined from pieces encoded once.

        The shared part (sender, subject, content) is encoded once per send (kept for the
        next batch of the same newsletter, sender and schedule) and every personalization is
        one format of pre-encoded keys and its own escaped strings; the bytes are exactly
        `json.dumps(body(batch))` (tested), without building 1000 dicts.
        """
        shared = (self.site, self.list_id, self.from_name, self.from_email, batch.newsletter,
                  batch.send_at, batch.schedule_id)
        if self._pieces is None or self._pieces[0] != shared:
            self._pieces = (shared, _Pieces(self, batch))
        piece = self._pieces[1]
        people = batch.recipients
        page = people if isinstance(people, Recipients) else Recipients.of(people)
        parts = piece.page(page) or list(map(piece, page))
        parts = parts or [""]
        parts[0] = piece.head + parts[0]  # head and tail on the ends: one join, one encode
        parts[-1] += piece.tail
        return ", ".join(parts).encode("ascii")

    def body(self, batch: EmailBatch) -> dict[str, Any]:
        """The mail/send JSON: shared content once, one personalization per recipient."""
        content = provider_content(batch.newsletter)
        body: dict[str, Any] = {
            "from": _party(self.from_name, self.from_email),
            "subject": batch.newsletter.subject,
            "content": [
                {"type": "text/plain", "value": content.text},
                {"type": "text/html", "value": content.html},
            ],
            "personalizations": [
                self._personalization(batch, r, content) for r in batch.recipients
            ],
        }
        if self.site.reply_to:
            body["reply_to"] = _party(*_split(self.site.reply_to))
        if batch.send_at is not None:
            body["send_at"] = int(batch.send_at.timestamp())
            body["batch_id"] = batch.schedule_id
        return body

    def open_schedule(self, at: datetime) -> str:
        """A batch_id for the whole scheduled send, so it can be cancelled as one."""
        return str(self.http.request("POST", "/v3/mail/batch", ok=(200, 201)).json()["batch_id"])

    def cancel_schedule(self, handle: str, provider_ids: Sequence[str]) -> int:
        """Cancel the send's batch; a batch cancelled already (an earlier try) counts as done."""
        found = self.http.request("GET", f"/v3/user/scheduled_sends/{handle}").json()
        if any(isinstance(s, dict) and s.get("status") == "cancel" for s in found or []):
            return len(provider_ids)
        try:
            self.http.request("POST", "/v3/user/scheduled_sends", ok=(200, 201),
                              json={"batch_id": handle, "status": "cancel"})
        except PermanentDeliveryError as exc:
            raise PermanentDeliveryError(
                f"SendGrid refused to cancel batch {handle} ({exc.problem})", where=NAME,
                fix="a batch cannot be cancelled later than 10 minutes before its send time",
            ) from exc
        return len(provider_ids)

    def _personalization(
        self, batch: EmailBatch, recipient: Recipient, content: Content
    ) -> dict[str, Any]:
        """One recipient: address, substitutions and list headers."""
        personal: dict[str, Any] = {
            "to": [_party(recipient.name, recipient.email)],
            "headers": list_headers(recipient, self.site, self.list_id),
        }
        if content.tags:
            personal["substitutions"] = substitutions(content, recipient)
        subject = subject_for(batch.newsletter, recipient)
        if subject != batch.newsletter.subject:
            personal["subject"] = subject
        return personal

    def close(self) -> None:
        """Release pooled connections."""
        self.http.close()


@lru_cache(maxsize=4)
def provider_content(newsletter: Newsletter) -> Content:
    """Replace markers by tags once per newsletter; HTML and text get separate tags.

    SendGrid substitutes a tag wherever it appears, subject included, so the tags carry a hash
    of the newsletter they are made for: article text cannot hold a tag that names its own
    hash, so no forged `[%pub:…%]` in a title or body is ever filled in.
    """
    tags: dict[tuple[str, str, bool], str] = {}
    whole = "\0".join((newsletter.subject, newsletter.html, newsletter.text))
    key_of_run = hashlib.sha256(whole.encode("utf-8", "surrogatepass")).hexdigest()[:16]

    def tagger(escaped: bool) -> Any:
        def tag(key: str, default: str) -> str:
            found = tags.get((key, default, escaped))
            if found is None:
                found = f"[%pub{key_of_run}:{key}:{len(tags)}%]"
                tags[(key, default, escaped)] = found
            return found
        return tag

    html_body = placeholders.provider_template(newsletter.html, tagger(True))
    text_body = placeholders.provider_template(newsletter.text, tagger(False))
    listed = tuple((tag, key, default, esc) for (key, default, esc), tag in tags.items())
    return Content(text=text_body, html=html_body, tags=listed)


def substitutions(content: Content, recipient: Recipient) -> dict[str, str]:
    """Each tag's value for one recipient (its default when the recipient has none)."""
    values = {
        placeholders.NAME: " ".join(recipient.name.split()),
        placeholders.UNSUBSCRIBE_URL: recipient.unsubscribe_url,
    }
    out = {}
    for tag, key, default, escaped in content.tags:
        value = values.get(key) or default
        out[tag] = html.escape(value) if escaped else value
    return out


class _Pieces:
    """Encodes one recipient's personalization as `json.dumps` would, from pre-encoded parts.

    Per batch, everything but the address, the name and the unsubscribe link is encoded once
    into two `%`-templates (for a recipient with a name, and without: each tag's default is
    then fixed text). Per recipient, each value is JSON-escaped once however many tags carry
    it, and HTML-escaped only when it holds one of the characters `html.escape` replaces.
    """

    def __init__(self, channel: SendGridChannel, batch: EmailBatch) -> None:
        self.batch, self.site = batch, channel.site
        self.site_mailto = channel.site.unsubscribe_mailto
        shell = list(channel.body(replace(batch, recipients=())).items())
        cut = [key for key, _ in shell].index("personalizations")
        self.head = json.dumps(dict(shell[:cut]))[:-1] + ', "personalizations": ['
        rest = json.dumps(dict(shell[cut + 1:]))
        self.tail = "]" + (", " + rest[1:] if len(shell) > cut + 1 else "}")
        self.personal_subject = placeholders.START in batch.newsletter.subject
        self.named, self.unnamed = (self._template(channel, batch, named) for named in (1, 0))
        self.plain = not (self.site_mailto or self.personal_subject)
        self.named_fast, self.pick_named = _positional(self.named)
        self.unnamed_fast, self.pick_unnamed = _positional(self.unnamed)

    @staticmethod
    def _template(channel: SendGridChannel, batch: EmailBatch, named: int) -> str:
        """The personalization up to its closing brace, with a %(…)s slot per personal value."""
        def fixed(text: str) -> str:
            return _json(text).replace("%", "%%")

        party = ('{"email": %(email)s, "name": %(name)s}' if named
                 else '{"email": %(email)s}')
        out = (f'{{"to": [{party}], "headers": {{"List-Id": '
               f'{fixed(list_id_value(channel.site, channel.list_id))}, "List-Unsubscribe":'
               f' %(unsubscribe)s, "List-Unsubscribe-Post": {fixed(ONE_CLICK)}}}')
        tags = provider_content(batch.newsletter).tags
        slots = {placeholders.NAME: "name" if named else "",
                 placeholders.UNSUBSCRIBE_URL: "url"}  # a recipient always has a link here
        pairs = []
        for tag, key, default, escaped in tags:
            slot = slots.get(key, "")
            value = (f"%({slot}_html)s" if escaped else f"%({slot})s") if slot else fixed(
                html.escape(default) if escaped else default)
            pairs.append(f"{fixed(tag)}: {value}")
        return out + (', "substitutions": {' + ", ".join(pairs) + "}" if pairs else "")

    def page(self, page: Recipients) -> list[str] | None:
        """A page's personalizations column by column when every one is the common case (one
        scan of all links and names finds none to HTML-escape); else None: one by one."""
        urls = page.urls
        if not (self.plain and all(urls) and not any(page.mailtos)) or _html_special(
                "".join(urls)) or _html_special("".join(page.names)):
            return None
        named, pick_named, unnamed, pick_unnamed = (
            self.named_fast, self.pick_named, self.unnamed_fast, self.pick_unnamed)
        names = [" ".join(name.split()) if name else "" for name in page.names]
        return [named % pick_named((email, _json(name), f'"<{url[1:-1]}>"', url)) if name
                else unnamed % pick_unnamed((email, "", f'"<{url[1:-1]}>"', url))
                for email, name, url in zip(map(_json, page.emails), names, map(_json, urls),
                                            strict=True)]

    def __call__(self, recipient: Recipient) -> str:
        """One personalization's JSON text (key order and spacing as `_personalization`): any
        case, mailto links, personal subjects and values to HTML-escape included."""
        url = recipient.unsubscribe_url
        url_json = _json(url)
        if url and not (recipient.unsubscribe_mailto or self.site_mailto):
            unsubscribe = f'"<{url_json[1:-1]}>"'  # "<" and ">" are never escaped in JSON
        else:  # refuses a recipient without a link; adds the mailto: one when there is one
            unsubscribe = _json(list_unsubscribe_value(recipient, self.site))
        values = {"email": _json(recipient.email), "unsubscribe": unsubscribe, "url": url_json,
                  "url_html": _json(html.escape(url)) if _html_special(url) else url_json}
        name = " ".join(recipient.name.split()) if recipient.name else ""
        if name:
            values["name"] = name_json = _json(name)
            values["name_html"] = _json(html.escape(name)) if _html_special(name) else name_json
            out = self.named % values
        else:
            out = self.unnamed % values
        if self.personal_subject:
            subject = subject_for(self.batch.newsletter, recipient)
            if subject != self.batch.newsletter.subject:
                out += f', "subject": {_json(subject)}'
        return out + "}"


def _positional(template: str) -> tuple[str, Callable[[tuple[str, ...]], tuple[str, ...]]]:
    """A `%(…)s` template as a positional one closed by its brace, and a picker that orders
    (email, name, unsubscribe, url) into its slots (the HTML ones equal: nothing to escape)."""
    order: list[int] = []

    def slot(found: re.Match[str]) -> str:
        if found[1] is None:
            return "%%"
        order.append(_FAST_SLOTS[found[1]])
        return "%s"

    text = _SLOT.sub(slot, template) + "}"
    assert len(order) > 1  # the address and the List-Unsubscribe value: `pick` gives a tuple
    pick: Callable[[tuple[str, ...]], tuple[str, ...]] = itemgetter(*order)
    return text, pick


def _html_special(text: str) -> bool:
    """Whether `html.escape(text)` changes anything (five substring scans beat one regex)."""
    return "&" in text or "<" in text or ">" in text or '"' in text or "'" in text


def _party(name: str, email: str) -> dict[str, str]:
    """SendGrid's {email, name} object."""
    clean = " ".join(name.split())
    return {"email": email, "name": clean} if clean else {"email": email}


def _split(mailbox: str) -> tuple[str, str]:
    """(name, address) of "Name <addr>"."""
    return parseaddr(mailbox)
