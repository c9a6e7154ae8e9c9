"""The RFC 5322 message: structure and headers parsed back, fast build equal to the reference."""

from __future__ import annotations

import email
import quopri
from dataclasses import replace
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from publisher.channels.message import MessageBuilder, QpTemplate, sample_eml
from publisher.config.settings import Config
from publisher.edition.newsletter.placeholders import NAME, UNSUBSCRIBE_URL, marker
from publisher.edition.newsletter.render import load_templates, render_newsletter
from publisher.errors import InputError
from publisher.model import Newsletter, Recipient
from tests.helpers.newsletter_samples import (
    english_article,
    english_digest,
    japanese_article,
    japanese_digest,
)

SITE = replace(
    Config().site, reply_to="Editors <editors@example.com>",
    unsubscribe_mailto="unsubscribe@example.com",
)
WHEN = datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC)
TEMPLATES = load_templates(None)
JA = render_newsletter(japanese_article(), japanese_digest(), Config(), TEMPLATES)
EN = render_newsletter(english_article(), english_digest(), Config(), TEMPLATES)
READER = Recipient(
    "reader@example.org", "山田 太郎", "https://example.com/unsubscribe?t=tok.en-123&l=ja"
)


def parse(data: bytes) -> EmailMessage:
    """Bytes back into a message with the modern policy."""
    message = email.message_from_bytes(data, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def builder(news: Newsletter = JA, lang: str = "ja") -> MessageBuilder:
    """A builder for the sample site."""
    return MessageBuilder(news, SITE, lang=lang, list_id="", message_id_domain="example.com")


def meaning(data: bytes) -> tuple[Any, ...]:
    """What a mail client sees: decoded headers, MIME tree, decoded bodies."""
    msg = parse(data)
    # folding may leave leading whitespace in an unstructured value; it carries no meaning
    headers = sorted((k, str(v).strip()) for k, v in msg.items() if k != "Content-Type")
    parts = [(p.get_content_type(), p.get_content_charset(), p["Content-Transfer-Encoding"],
              p.get_content()) for p in msg.iter_parts()]
    return msg.get_content_type(), headers, parts


def test_japanese_message_structure_and_headers() -> None:
    data = builder().build(READER, date=WHEN, message_id="abc123")
    raw_headers = data.split(b"\r\n\r\n", 1)[0].decode("ascii")  # all headers are 7-bit
    assert "Subject: =?utf-8?b?" in raw_headers  # RFC 2047 for the Japanese subject
    msg = parse(data)
    assert msg.get_content_type() == "multipart/alternative"
    text, page = list(msg.iter_parts())
    assert (text.get_content_type(), page.get_content_type()) == ("text/plain", "text/html")
    for part in (text, page):
        assert part.get_content_charset() == "utf-8"
        assert part["Content-Transfer-Encoding"] == "quoted-printable"
    assert msg["Subject"] == "中央アジアと新しい資源外交の行方"
    assert msg["From"] == "Publisher Demo <news@example.com>"
    assert msg["Reply-To"] == "Editors <editors@example.com>"
    assert msg["To"].addresses[0].display_name == "山田 太郎"
    assert msg["To"].addresses[0].addr_spec == "reader@example.org"
    assert msg["Date"].datetime == WHEN
    assert msg["Message-ID"] == "<abc123@example.com>"
    assert msg["List-Id"] == "Publisher Demo <newsletter.example.com>"
    assert msg["List-Unsubscribe"] == (
        "<https://example.com/unsubscribe?t=tok.en-123&l=ja>, <mailto:unsubscribe@example.com>"
    )
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert msg["Content-Language"] == "ja"
    assert "山田 太郎様" in text.get_content()
    assert "https://example.com/unsubscribe?t=tok.en-123&l=ja" in text.get_content()
    assert 'href="https://example.com/unsubscribe?t=tok.en-123&amp;l=ja"' in page.get_content()
    assert max(len(line) for line in data.split(b"\r\n")) <= 78  # far below SMTP's 998


def test_fast_build_means_the_same_as_a_fresh_email_message() -> None:
    fast = builder()
    for recipient in (
        READER,
        Recipient("plain@example.com", "", "https://example.com/u/1"),
        Recipient("q@example.com", 'Bob "The" Builder, Jr.', "https://example.com/u?a=1&b=2"),
        Recipient("long@example.com", "X" * 90, "https://example.com/u/" + "a=b" * 60),
    ):
        data = fast.build(recipient, date=WHEN, message_id="<m1@example.com>")
        reference = fast.reference(recipient, date=WHEN, message_id="<m1@example.com>")
        assert meaning(data) == meaning(reference.as_bytes())


@settings(max_examples=40, deadline=None, derandomize=True)
@given(
    name=st.text(st.characters(categories=("L", "N", "P", "Zs", "S")), max_size=60),
    token=st.text(alphabet="abcXYZ0189-_.=&%", min_size=1, max_size=120),
)
def test_any_name_and_token_round_trip(name: str, token: str) -> None:
    recipient = Recipient("r@example.com", name, f"https://example.com/u?t={token}")
    fast = builder(EN, "en")
    data = fast.build(recipient, date=WHEN, message_id="m@example.com")
    reference = fast.reference(recipient, date=WHEN, message_id="m@example.com")
    assert meaning(data) == meaning(reference.as_bytes())


@settings(max_examples=100, deadline=None, derandomize=True)
@example(pieces=["\n0", ""], value="")  # a piece starting with a newline keeps it
@given(
    pieces=st.lists(st.text(alphabet=st.characters(exclude_categories=("Cs",),
                                                   exclude_characters="\ue000\ue001\ue002\r"),
                            max_size=200), min_size=1, max_size=4),
    value=st.text(alphabet="a= é\tz", max_size=100),
)
def test_qp_pieces_decode_to_the_joined_text(pieces: list[str], value: str) -> None:
    text = marker(NAME).join(pieces) + "\n"
    encoded = QpTemplate(text).fill({NAME: value})
    assert all(len(line) <= 76 for line in encoded.split(b"\r\n"))
    assert quopri.decodestring(encoded.replace(b"\r\n", b"\n")).decode("utf-8") == (
        value.join(pieces) + "\n"
    )


def test_english_subject_is_plain_and_name_defaults() -> None:
    data = builder(EN, "en").build(
        Recipient("a@example.com", unsubscribe_url="https://example.com/u/2"),
        date=WHEN, message_id="x@example.com",
    )
    assert b"Subject: One Markdown file, every channel\r\n" in data
    text = parse(data).get_body(preferencelist=("plain",))
    assert text is not None and text.get_content().startswith("Hi there,")


def test_recipient_without_unsubscribe_url_is_refused() -> None:
    with pytest.raises(InputError, match="unsubscribe URL"):
        builder().build(Recipient("a@example.com"), date=WHEN, message_id="x")


def test_sample_eml_addresses_the_sample_reader() -> None:
    config = replace(Config(), site=replace(Config().site, url="https://news.example.net"))
    data = sample_eml(JA, config, lang="ja", date=WHEN, message_id="s1")
    msg = parse(data)
    assert msg["To"] == "reader@example.com"
    assert msg["List-Unsubscribe"] == "<https://news.example.net/unsubscribe>"
    assert msg["Message-ID"] == "<s1@example.com>"


def test_placeholder_markers_never_reach_the_message() -> None:
    data = builder().build(READER, date=WHEN, message_id="m")
    decoded = "".join(str(p.get_content()) for p in parse(data).iter_parts())
    assert marker(UNSUBSCRIBE_URL) not in decoded and "\ue000" not in decoded


def test_site_list_id_is_used() -> None:
    site = replace(SITE, list_id="weekly.example.com", reply_to="")
    data = MessageBuilder(JA, site, lang="ja", list_id="", message_id_domain="e.com").build(
        READER, date=WHEN, message_id="m"
    )
    msg = parse(data)
    assert msg["List-Id"] == "Publisher Demo <weekly.example.com>" and msg["Reply-To"] is None
