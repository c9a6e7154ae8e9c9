"""The channel contract: one table, every registered channel against its fake, over real sockets.

Modelled on apprise's `AppriseURLTester` (test/helpers/rest.py in caronc/apprise): each row says
how to start a channel's fake and which settings and secrets it accepts or refuses; the same
checks then run for every channel. The cases are parametrized from the registry, so a channel
that is registered without a row here fails the suite.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from typing import Any, cast

import pytest

from publisher.channels import BatchResult, CampaignChannel, EmailChannel, SocialChannel, registry
from publisher.channels.http import RetryPolicy, with_retries
from publisher.channels.platform import deliver
from publisher.config.settings import Config
from publisher.delivery.pipeline import preflight
from publisher.errors import (
    ConfigError,
    DeliveryError,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from publisher.networks import NAMES as NETWORK_NAMES
from tests.fakes.bluesky import FakeBluesky
from tests.fakes.buttondown import ButtondownFake
from tests.fakes.ghost import GhostFake
from tests.fakes.linkedin import FakeLinkedIn
from tests.fakes.listmonk import ListmonkFake
from tests.fakes.mail import SITE, Sleeps, batch, newsletter, recipients
from tests.fakes.mailchimp import MailchimpFake
from tests.fakes.mastodon import FakeMastodon
from tests.fakes.postmark import PostmarkFake
from tests.fakes.resend import ResendFake
from tests.fakes.sendgrid import SendGridFake
from tests.fakes.server import FakeHTTPServer, Faults
from tests.fakes.smtp import SmtpFake
from tests.fakes.support import thread_posts
from tests.fakes.threads import FakeThreads
from tests.fakes.x import FakeX

# The plain-text SMTP fake asks for AUTH without TLS on purpose (local tests only).
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")

RESET = 7  # seconds the fakes' 429s ask the client to wait
INJECTED = "internal server error (injected)"  # what a fake's injected 500 says, in its own shape
PEOPLE = recipients(3)
READERS = [person.email for person in PEOPLE]  # a platform's own list, for its rows


@dataclass
class Harness:
    """One channel's fake, running, and what it accepts: a row of the contract table."""

    settings: dict[str, object]  # a [channels.<name>] table pointing at the fake
    secrets: dict[str, str]  # credentials the fake accepts
    bad_secrets: dict[str, str]  # a credential the fake refuses
    delivered: Callable[[], int]  # messages or posts the fake has accepted so far
    throttle: Callable[[], None]  # the next call is rate limited
    fail: Callable[[], None]  # the next call fails with the provider's error body
    error_text: str = INJECTED  # what the one-line error must quote of that body
    reset: float | None = RESET  # the wait a 429 asks for; None: the protocol has none (SMTP,
    # Meta's and LinkedIn's 429s: the retry backs off by itself)
    duplicates: Callable[[], dict[str, int]] = field(default=lambda: {})
    hints: dict[str, int] = field(default_factory=dict)  # what its preflight tells the composer


def http_faults(server: FakeHTTPServer, kind: str) -> Callable[[], None]:
    """Make the fake's next request fail with `kind` (a 429 carries the reset headers)."""
    def arm() -> None:
        server.faults = Faults(rate=1.0, kinds=(kind,), only_first=1, reset_seconds=RESET)
    return arm


def smtp_replies(fake: SmtpFake, reply: str) -> Callable[[], None]:
    """Make the SMTP fake answer RCPT with `reply` for every contract recipient."""
    def arm() -> None:
        fake.reject.update({person.email.lower(): reply for person in PEOPLE})
    return arm


def smtp_row(stack: ExitStack) -> Harness:
    fake = stack.enter_context(SmtpFake(credentials=("mailer", "smtp-right-pass-1")).running())
    return Harness(
        settings={"host": "127.0.0.1", "port": fake.port, "security": "none", "user": "mailer",
                  "timeout": 5},
        secrets={"SMTP_PASSWORD": "smtp-right-pass-1"},
        bad_secrets={"SMTP_PASSWORD": "smtp-wrong-pass-2"},
        delivered=lambda: len(fake.received), duplicates=fake.deliveries.duplicates,
        # SMTP has no reset header: a 4xx is a deferral, reported per recipient (RFC 5321 4.2.1)
        throttle=smtp_replies(fake, "451 4.7.1 Rate limit exceeded, try again later"), reset=None,
        fail=smtp_replies(fake, "554 5.7.1 Message refused by policy"),
        error_text="554 5.7.1 Message refused by policy",
    )


def sendgrid_row(stack: ExitStack) -> Harness:
    key = "SG.contract-key-abcdefghijklmnopqrstuvwxyz"
    fake = stack.enter_context(SendGridFake(key).running())
    return Harness(
        settings={"base_url": fake.url, "timeout": 2},
        secrets={"SENDGRID_API_KEY": key},
        bad_secrets={"SENDGRID_API_KEY": "SG.wrong-contract-key-0000000000"},
        delivered=lambda: len(fake.deliveries.messages), duplicates=fake.deliveries.duplicates,
        throttle=http_faults(fake.server, "429"), fail=http_faults(fake.server, "500"),
    )


def postmark_row(stack: ExitStack) -> Harness:
    token = "pm-contract-token-0123456789abcdef"
    fake = stack.enter_context(PostmarkFake(token).running())
    return Harness(
        settings={"base_url": fake.url, "timeout": 2},
        secrets={"POSTMARK_SERVER_TOKEN": token},
        bad_secrets={"POSTMARK_SERVER_TOKEN": "pm-wrong-contract-token-000"},
        delivered=lambda: len(fake.deliveries.messages), duplicates=fake.deliveries.duplicates,
        throttle=http_faults(fake.server, "429"), fail=http_faults(fake.server, "500"),
    )


def resend_row(stack: ExitStack) -> Harness:
    key = "re_contract_key_0123456789abcdef"
    fake = stack.enter_context(ResendFake(key).running())
    return Harness(
        settings={"base_url": fake.url, "timeout": 2},
        secrets={"RESEND_API_KEY": key},
        bad_secrets={"RESEND_API_KEY": "re_wrong_contract_key_0000"},
        delivered=lambda: len(fake.deliveries.messages), duplicates=fake.deliveries.duplicates,
        throttle=http_faults(fake.server, "429"), fail=http_faults(fake.server, "500"),
    )


def x_row(stack: ExitStack) -> Harness:
    fake = FakeX()
    stack.callback(fake.close)
    good = {"X_API_KEY": "x-consumer-key-1", "X_API_SECRET": "x-consumer-secret-1",
            "X_ACCESS_TOKEN": "x-access-token-1", "X_ACCESS_TOKEN_SECRET": "x-access-secret-1"}
    return Harness(
        settings={"api_base": fake.url, "timeout": 2.0},
        secrets=good, bad_secrets={**good, "X_ACCESS_TOKEN_SECRET": "x-stale-secret-77"},
        delivered=lambda: len(fake.tweets), hints={"limit": 280},
        throttle=http_faults(fake.http, "429"), fail=http_faults(fake.http, "500"),
    )


def bluesky_row(stack: ExitStack) -> Harness:
    fake = FakeBluesky(handle="editor.example.com", password="contract-app-pass-1")
    stack.callback(fake.close)
    return Harness(
        settings={"handle": "editor.example.com", "pds_url": fake.url, "timeout": 2.0},
        secrets={"BLUESKY_APP_PASSWORD": "contract-app-pass-1"},
        bad_secrets={"BLUESKY_APP_PASSWORD": "revoked-app-pass-9"},
        delivered=lambda: len(fake.posts), hints={"limit": 300, "max_bytes": 3000},
        throttle=http_faults(fake.http, "429"), fail=http_faults(fake.http, "500"),
    )


def mastodon_row(stack: ExitStack) -> Harness:
    fake = FakeMastodon(token="mastodon-contract-token-1")
    stack.callback(fake.close)
    return Harness(
        settings={"instance_url": fake.url, "timeout": 2.0},
        secrets={"MASTODON_ACCESS_TOKEN": "mastodon-contract-token-1"},
        bad_secrets={"MASTODON_ACCESS_TOKEN": "expired-contract-token-0"},
        delivered=lambda: len(fake.statuses), hints={"limit": 1000, "url_length": 23},
        throttle=http_faults(fake.http, "429"), fail=http_faults(fake.http, "500"),
    )


def buttondown_row(stack: ExitStack) -> Harness:
    key = "bd-contract-key-0123456789"
    fake = stack.enter_context(ButtondownFake(key, subscribers=READERS).running())
    return platform_harness(fake, {"base_url": fake.url}, "BUTTONDOWN_API_KEY", key,
                            "bd-wrong-contract-key-000")


def listmonk_row(stack: ExitStack) -> Harness:
    token = "lm-contract-token-0123456789"
    fake = stack.enter_context(ListmonkFake("publisher", token, subscribers=READERS).running())
    return platform_harness(
        fake, {"base_url": fake.url, "api_user": "publisher", "lists": ["Newsletter"]},
        "LISTMONK_API_TOKEN", token, "lm-wrong-contract-token-000")


def ghost_row(stack: ExitStack) -> Harness:
    key = "6489b2a1c0ffee0001a2b3c4:" + "c0" * 32
    fake = stack.enter_context(GhostFake(key, newsletters=["weekly"], subscribers=READERS)
                               .running())
    return platform_harness(fake, {"base_url": fake.url, "newsletter": "weekly"},
                            "GHOST_ADMIN_API_KEY", key, key[:25] + "0d" * 32)


def mailchimp_row(stack: ExitStack) -> Harness:
    key = "0123456789abcdef0123456789abcdef-us6"
    fake = stack.enter_context(MailchimpFake(key, lists=["a1b2c3d4e5"], subscribers=READERS)
                               .running())
    row = platform_harness(fake, {"base_url": fake.url, "list_id": "a1b2c3d4e5"},
                           "MAILCHIMP_API_KEY", key, "ffffffffffffffffffffffffffffffff-us6")
    row.reset = None  # Mailchimp's 429 names no wait: the shared backoff decides
    return row


def platform_harness(fake: Any, settings: dict[str, object], variable: str, good: str,
                     bad: str) -> Harness:
    """A newsletter platform's row: what it delivered is one copy per reader on its list."""
    return Harness(
        settings={**settings, "timeout": 2}, secrets={variable: good},
        bad_secrets={variable: bad}, delivered=lambda: len(fake.audience.deliveries.messages),
        duplicates=fake.audience.deliveries.duplicates,
        throttle=http_faults(fake.server, "429"), fail=http_faults(fake.server, "500"),
    )


def threads_row(stack: ExitStack) -> Harness:
    fake = FakeThreads(token="threads-contract-token-1")
    stack.callback(fake.close)
    return Harness(
        settings={"api_base": fake.url, "user_id": fake.user_id, "timeout": 2.0},
        secrets={"THREADS_ACCESS_TOKEN": "threads-contract-token-1"},
        bad_secrets={"THREADS_ACCESS_TOKEN": "expired-threads-token-0"},
        delivered=lambda: len(fake.posts), hints={"limit": 500},
        reset=None,  # X-App-Usage carries no reset time
        throttle=http_faults(fake.http, "429"), fail=http_faults(fake.http, "500"),
    )


def linkedin_row(stack: ExitStack) -> Harness:
    fake = FakeLinkedIn(token="linkedin-contract-token-1")
    stack.callback(fake.close)
    return Harness(
        settings={"api_base": fake.url, "author": fake.author, "timeout": 2.0},
        secrets={"LINKEDIN_ACCESS_TOKEN": "linkedin-contract-token-1"},
        bad_secrets={"LINKEDIN_ACCESS_TOKEN": "expired-linkedin-token-0"},
        delivered=lambda: len(fake.posts), hints={"limit": 3000},
        reset=None,  # LinkedIn sends no reset header
        throttle=http_faults(fake.http, "429"), fail=http_faults(fake.http, "500"),
    )


# channel name → how to run it against its fake; one row per registered channel
CONTRACT: dict[str, Callable[[ExitStack], Harness]] = {
    "smtp": smtp_row,
    "sendgrid": sendgrid_row,
    "postmark": postmark_row,
    "resend": resend_row,
    "buttondown": buttondown_row,
    "listmonk": listmonk_row,
    "ghost": ghost_row,
    "mailchimp": mailchimp_row,
    "x": x_row,
    "bluesky": bluesky_row,
    "mastodon": mastodon_row,
    "threads": threads_row,
    "linkedin": linkedin_row,
}


@pytest.fixture(params=registry.names())
def name(request: pytest.FixtureRequest) -> str:
    """Every registered channel; one without a row in CONTRACT fails here."""
    channel: str = request.param
    if channel not in CONTRACT:
        pytest.fail(f"channel {channel!r} is registered but has no row in CONTRACT")
    return channel


@pytest.fixture
def harness(name: str, monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> Iterator[Harness]:
    """The channel's fake, running, with its good secrets in the environment."""
    monkeypatch.setenv("PUBLISHER_NO_KEYRING", "1")
    monkeypatch.chdir(str(tmp_path))  # no .env of the developer's is read
    with ExitStack() as stack:
        row = CONTRACT[name](stack)
        for variable, value in row.secrets.items():
            monkeypatch.setenv(variable, value)
        yield row


def build(name: str, harness: Harness, source: str = ""
          ) -> EmailChannel | SocialChannel | CampaignChannel:
    """The channel as the core builds it: through the registry, from a [channels] table."""
    config = Config(site=SITE, channels={name: harness.settings}, source=source)
    if name in registry.PLATFORM:
        return registry.build_campaign(name, config)
    if name in registry.EMAIL:
        return registry.build_email(name, config)
    return registry.build_social(name, config)


def send_once(channel: EmailChannel | SocialChannel | CampaignChannel,
              key: str = "contract-1") -> BatchResult | str:
    """One delivery: a batch of three recipients, one post or one campaign; a post's or a
    campaign's provider id."""
    if channel.facts.kind == "campaign":
        campaign = cast(CampaignChannel, channel)
        return deliver(campaign, campaign.draft(newsletter(), key * 2, "契約テスト")).provider_id
    if channel.facts.kind == "social":
        social = cast(SocialChannel, channel)
        [post] = thread_posts(social.facts.network, ["契約テストの投稿です。"])
        return social.send_post(post, key=key, reply_to=None, root=None).provider_id
    return cast(EmailChannel, channel).send_batch(batch(PEOPLE, key=key))


def units(name: str) -> int:
    """What one send_once delivers: three messages (a platform: one per reader), or one post."""
    return len(PEOPLE) if name in registry.EMAIL or name in registry.PLATFORM else 1


def test_every_row_is_a_registered_channel() -> None:
    assert sorted(CONTRACT) == sorted(registry.names())


def test_the_declared_facts_agree_with_the_registry(name: str) -> None:
    facts = registry.facts(name)
    if name in registry.EMAIL:
        assert facts.kind == "email" and facts.network == "" and facts.batch_size >= 1
    elif name in registry.PLATFORM:
        assert facts.kind == "campaign" and facts.network == "" and facts.idempotent
    else:
        assert facts.kind == "social" and facts.network in NETWORK_NAMES
        assert registry.social_for(facts.network) == name
    assert facts.docs.startswith("https://")
    assert facts.secrets and all(s.isupper() for s in facts.secrets)


def test_preflight_passes_with_good_credentials(name: str, harness: Harness) -> None:
    channel = build(name, harness)
    try:
        hints = preflight(channel)
    finally:
        channel.close()
    assert hints == harness.hints  # email: none; social: the limits the composer writes to
    assert harness.delivered() == 0


def test_bad_credentials_are_refused_in_one_line_and_nothing_is_sent(
    name: str, harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    for variable, value in harness.bad_secrets.items():
        monkeypatch.setenv(variable, value)
    channel = build(name, harness)
    try:
        with pytest.raises(ConfigError) as at_preflight:  # `publish check`/`publish`: exit 3
            preflight(channel)
        with pytest.raises(PermanentDeliveryError) as at_send:  # not worth a retry
            send_once(channel)
    finally:
        channel.close()
    assert at_preflight.value.exit_code == 3
    for line in (str(at_preflight.value), str(at_send.value)):
        assert "\n" not in line
        assert not any(secret in line for secret in harness.bad_secrets.values())
    assert harness.delivered() == 0


def test_a_missing_secret_names_a_declared_one(
    name: str, harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    for variable in harness.secrets:
        monkeypatch.delenv(variable)
    with pytest.raises(ConfigError) as caught:
        build(name, harness)
    assert any(secret in str(caught.value) for secret in registry.facts(name).secrets)


def test_a_mistyped_key_is_one_line_naming_the_file_the_key_and_the_fix(
    name: str, harness: Harness
) -> None:
    mistyped = replace(harness, settings={**harness.settings, "timeuot": 5})
    with pytest.raises(ConfigError) as caught:
        build(name, mistyped, source="site/publisher.toml")
    error = caught.value
    assert error.where == f"site/publisher.toml [channels.{name}]"
    assert error.problem == "unknown key 'timeuot'" and error.fix.startswith("use one of: ")
    assert "\n" not in str(error) and error.exit_code == 3


def test_a_send_is_recorded_exactly_once(name: str, harness: Harness) -> None:
    channel = build(name, harness)
    try:
        preflight(channel)
        first = send_once(channel)
        assert harness.delivered() == units(name)
        if isinstance(first, BatchResult):
            assert sorted(first.accepted) == sorted(p.email for p in PEOPLE)
        else:
            assert first
        if channel.facts.idempotent:  # the fact is a promise: the same key delivers nothing new
            again = send_once(channel)
            assert harness.delivered() == units(name) and again == first
    finally:
        channel.close()
    assert harness.duplicates() == {}


def test_a_429_reset_is_honoured_or_reported(name: str, harness: Harness) -> None:
    channel = build(name, harness)
    sleeps = Sleeps()
    try:
        preflight(channel)
        harness.throttle()
        result = with_retries(lambda: send_once(channel), RetryPolicy(attempts=3), sleep=sleeps)
    finally:
        channel.close()
    if harness.reset is None and not isinstance(result, BatchResult):  # backoff's own wait
        assert len(sleeps.delays) == 1 and harness.delivered() == units(name)
        return
    if harness.reset is None:  # no reset header in the protocol: deferred, to retry next run
        assert isinstance(result, BatchResult) and sorted(result.deferred) == sorted(
            p.email for p in PEOPLE)
        assert all("\n" not in why and "451" in why for why in result.deferred.values())
        return
    assert len(sleeps.delays) == 1 and harness.reset - 1.5 <= sleeps.delays[0] <= harness.reset + 1
    assert harness.delivered() == units(name)


def test_an_error_body_becomes_one_line(name: str, harness: Harness) -> None:
    channel = build(name, harness)
    try:
        preflight(channel)
        harness.fail()
        try:
            result = send_once(channel)
        except DeliveryError as exc:
            assert isinstance(exc, TransientDeliveryError)  # a 5xx is worth a retry
            lines = [str(exc)]
        else:
            assert isinstance(result, BatchResult) and not result.accepted
            lines = list(result.rejected.values())
    finally:
        channel.close()
    assert lines and all("\n" not in line and harness.error_text in line for line in lines)
    assert all(len(line) < 600 for line in lines)


def test_a_dry_run_checks_the_table_with_no_secret_and_delivers_nothing(
    name: str, harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    for variable in harness.secrets:
        monkeypatch.delenv(variable)
    registry.check_table(name, Config(site=SITE, channels={name: harness.settings}))
    mistyped = Config(site=SITE, channels={name: {**harness.settings, "timeuot": 5}},
                      source="site/publisher.toml")
    with pytest.raises(ConfigError) as caught:
        registry.check_table(name, mistyped)
    assert caught.value.problem == "unknown key 'timeuot'"
    assert caught.value.where == f"site/publisher.toml [channels.{name}]"
    assert harness.delivered() == 0
