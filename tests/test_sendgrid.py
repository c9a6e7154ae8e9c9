"""SendGrid channel against the local contract-enforcing fake, over real sockets."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from publisher.channels import context_for, sendgrid
from publisher.channels.http import HttpClient
from publisher.edition.newsletter.placeholders import NAME, marker
from publisher.errors import (
    ConfigError,
    InputError,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from publisher.model import Newsletter, Recipient, Recipients
from tests.fakes.mail import SITE, Sleeps, batch, newsletter, recipients, send_all
from tests.fakes.sendgrid import SendGridFake
from tests.fakes.server import Faults

KEY = "SG.local-test-key-abcdefghijklmnopqrstuvwxyz"


def build(settings: dict[str, object]) -> sendgrid.SendGridChannel:
    """The channel from a [channels.sendgrid] table, as the registry builds it."""
    return sendgrid.SendGridChannel.from_config(context_for("sendgrid", settings, SITE))


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PUBLISHER_NO_KEYRING", "1")
    monkeypatch.setenv("SENDGRID_API_KEY", KEY)


@pytest.fixture
def fake() -> Iterator[SendGridFake]:
    with SendGridFake(KEY).running() as fake:
        yield fake


def channel(fake: SendGridFake, **settings: object) -> sendgrid.SendGridChannel:
    return build({"base_url": fake.url, "timeout": 2, **settings})


def test_personalizations_carry_each_recipients_name_and_link(fake: SendGridFake) -> None:
    people = recipients(4)
    sg = channel(fake)
    sg.preflight()
    result = sg.send_batch(batch(people))
    assert fake.server.count("POST", "/v3/mail/send") == 1
    ids = set(result.accepted.values())
    assert len(ids) == 1 and ids == {m["id"] for m in fake.deliveries.messages}
    assert sorted(result.accepted) == sorted(p.email for p in people)
    for person in people:
        [message] = fake.deliveries.for_email(person.email)
        html_link = person.unsubscribe_url.replace("&", "&amp;")
        assert f'href="{html_link}"' in message["html"]
        assert f"配信停止: {person.unsubscribe_url}" in message["text"]
        expected = person.name or "読者の皆"
        assert f"{expected}様" in message["text"]
        assert f"{expected.replace('&', '&amp;')}様" in message["html"]
        assert message["headers"]["List-Unsubscribe"].startswith(f"<{person.unsubscribe_url}>")
        assert message["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert not fake.deliveries.duplicates()


def test_batches_of_1000_in_exactly_ceil_n_over_1000_calls(fake: SendGridFake) -> None:
    sg = channel(fake)
    assert sg.batch_size == sendgrid.BATCH_SIZE == 1000
    people = recipients(2500)
    accepted = send_all(sg.send_batch, people, sg.batch_size)
    assert len(accepted) == 2500
    assert fake.server.count("POST", "/v3/mail/send") == 3
    assert not fake.deliveries.duplicates()


def test_the_fake_enforces_the_1000_personalization_limit(fake: SendGridFake) -> None:
    with pytest.raises(PermanentDeliveryError, match="limited to 1000 personalizations"):
        channel(fake).send_batch(batch(recipients(1001)))
    assert fake.deliveries.messages == []
    with pytest.raises(ConfigError, match="batch_size"):
        channel(fake, batch_size=1001)


def test_5xx_and_drops_are_transient_and_a_retried_send_lands_exactly_once() -> None:
    faults = Faults(rate=0.5, kinds=("500", "429", "drop"), seed=1, reset_seconds=3)
    with SendGridFake(KEY, faults=faults).running() as fake:
        sleeps = Sleeps()
        accepted = send_all(channel(fake).send_batch, recipients(50), 10, sleeps=sleeps)
        assert len(accepted) == 50
        assert not fake.deliveries.duplicates()
        assert set(faults.injected) == {"500", "429", "drop"}
        assert any(1.9 <= d <= 3.1 for d in sleeps.delays)  # honoured the 3 s reset


def test_a_dropped_connection_may_have_delivered() -> None:
    with SendGridFake(KEY, faults=Faults(rate=1.0, kinds=("drop",))).running() as fake:
        with pytest.raises(TransientDeliveryError) as caught:
            channel(fake).send_batch(batch(recipients(1)))
        assert caught.value.maybe_delivered


def test_substitution_tags_written_in_the_article_are_not_filled(fake: SendGridFake) -> None:
    forged = "[%pub:unsubscribe_url:1%] [%pub:name:0%] [%pub:unsubscribe_url:2%]"
    base = newsletter(subject=f"件名 {forged}")
    news = replace(base, html=base.html.replace("本文です。", f"本文 {forged}"),
                   text=base.text.replace("本文です。", f"本文 {forged}"))
    [person] = recipients(1)
    channel(fake).send_batch(batch([person], news=news))
    [message] = fake.deliveries.for_email(person.email)
    assert forged in message["text"] and forged in message["subject"]
    assert forged in message["html"]
    assert message["text"].count(person.unsubscribe_url) == 1  # only the real footer link


def test_the_encoded_body_is_exactly_the_json_of_body() -> None:
    # The bytes sent are joined from pre-encoded pieces; they must be json.dumps of the dict
    # body() describes, for hostile names, personal subjects, mailto links, reply-to and send_at.
    odd = [Recipient(f"r{i}@example.com", name, f"https://x.example/u?a=1&t=tok{i}~x",
                     "leave@example.com" if i % 2 else "")
           for i, name in enumerate(["", 'Q "uote" \\ back', "改\n行\t 名", "\u2028 <b>&amp;",
                                     "emoji 😀 \ud800x", "  spaced   out  "])]
    odd += [Recipient("q@example.com", "<i>'s</i>", "https://x.example/u?t=\"<'>&\u00e9~"),
            Recipient("e@example.com", "&", "https://x.example/u?t=plain~tok")]
    with_mailto = replace(SITE, reply_to="Desk <desk@example.com>",
                          unsubscribe_mailto="l@example.com")
    plain = Newsletter(subject="no tags", preheader="", html="<p>x</p>", text="x\n")
    personal = newsletter(subject=f"{marker(NAME, 'あなた')}さんへ")
    defaults = newsletter(subject="x")
    defaults = replace(defaults, html=defaults.html + marker(NAME, '"&<読者>\'') + marker(NAME),
                       text=defaults.text + marker(NAME, "<&>") + marker(NAME, "\\\n"))
    for site in (with_mailto, SITE):
        for news in (newsletter(), personal, plain, defaults):
            for at in (None, datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)):
                sg = sendgrid.SendGridChannel(HttpClient("sendgrid", "http://127.0.0.1:9"), site,
                                              list_id="weekly.example.com")
                for people in (odd, recipients(5)):
                    cut = replace(batch(people, news=news), send_at=at,
                                  schedule_id="b1" if at else "")
                    assert sg.encoded_body(cut) == json.dumps(sg.body(cut)).encode("ascii")


def test_the_common_case_encodes_exactly_the_json_of_body() -> None:
    # Without a mailto link or a personal subject, plain values fill positional templates;
    # mixed with recipients that still take the general path, in one batch; a page of columns
    # whose links and names need no escaping is encoded column by column.
    site = replace(SITE, unsubscribe_mailto="")
    names = ["", "Ann", "  spaced   out  ", "   ", "改\n行\t 名", "back \\ slash",
             "100% %s %(name)s", "\u2028 line",
             "emoji 😀 \ud800x", "A & B", "<b>", "it's", 'Q "uote"']
    people = [Recipient(f"r{i}@example.com", name, f"https://x.example/u?t=tok{i}%41~x\\",
                        "leave@example.com" if i % 5 == 4 else "", i + 1)
              for i, name in enumerate(names)]
    people += [Recipient("amp@example.com", "Ann", "https://x.example/u?a=1&t=tok~x")]
    defaults = newsletter(subject="x")
    defaults = replace(defaults, html=defaults.html + marker(NAME, "100% '&'") + marker(NAME),
                       text=defaults.text + marker(NAME, "%(url)s %%") + marker(NAME, "\\\n"))
    plain = Newsletter(subject="no tags", preheader="", html="<p>x</p>", text="x\n")
    personal = newsletter(subject=f"{marker(NAME, 'あなた')}さんへ")
    for news in (newsletter(), defaults, plain, personal):
        sg = sendgrid.SendGridChannel(HttpClient("sendgrid", "http://127.0.0.1:9"), site)
        for group in (people, people[:1], people[1:2], [], people[:4], people[5:9]):
            for cut in (batch(group, news=news),  # as a tuple, and as a page of columns
                        replace(batch(group, news=news), recipients=Recipients.of(group))):
                assert sg.encoded_body(cut) == json.dumps(sg.body(cut)).encode("ascii")


def test_the_encoded_body_refuses_a_recipient_without_an_unsubscribe_link() -> None:
    sg = sendgrid.SendGridChannel(HttpClient("sendgrid", "http://127.0.0.1:9"), SITE)
    for site in (SITE, replace(SITE, unsubscribe_mailto="l@example.com")):
        sg.site = site
        with pytest.raises(InputError, match="no unsubscribe URL"):
            sg.encoded_body(batch([Recipient("a@example.com", "A")]))
