"""The four newsletter platforms against their local fakes, over real sockets.

Each platform owns its list: one campaign per edition goes out once to every reader, a rerun or a
resumed run finds the same campaign, a proof is the platform's own test send, and placeholders
become the platform's merge tags while template syntax in the article stays inert.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from publisher.channels import buttondown, context_for, ghost, listmonk, mailchimp, registry
from publisher.channels import platform as shared
from publisher.config.settings import Config
from publisher.errors import ConfigError, PermanentDeliveryError, TransientDeliveryError
from tests.fakes.buttondown import ButtondownFake
from tests.fakes.ghost import GhostFake
from tests.fakes.listmonk import ListmonkFake
from tests.fakes.mail import SITE, newsletter
from tests.fakes.mailchimp import MailchimpFake
from tests.fakes.server import Faults

READERS = [f"reader{i}@example.org" for i in range(5)]
GHOST_KEY = "6489b2a1c0ffee0001a2b3c4:" + "5e" * 32
MAILCHIMP_KEY = "0123456789abcdef0123456789abcdef-us6"


@dataclass(frozen=True)
class Platform:
    """How to stand up one platform's fake and its channel."""

    name: str
    env: str
    key: str
    fake: Callable[..., Any]
    settings: Callable[[Any], dict[str, Any]]
    module: Any


PLATFORMS = {
    "buttondown": Platform(
        "buttondown", "BUTTONDOWN_API_KEY", "bd-test-key-0123456789",
        lambda **kw: ButtondownFake("bd-test-key-0123456789", **kw),
        lambda fake: {"base_url": fake.url, "newsletter": "news"}, buttondown),
    "listmonk": Platform(
        "listmonk", "LISTMONK_API_TOKEN", "lm-test-token-0123456789",
        lambda **kw: ListmonkFake("publisher", "lm-test-token-0123456789",
                                  lists=["Newsletter", "Staff"], **kw),
        lambda fake: {"base_url": fake.url, "api_user": "publisher", "lists": ["Newsletter"]},
        listmonk),
    "ghost": Platform(
        "ghost", "GHOST_ADMIN_API_KEY", GHOST_KEY,
        lambda **kw: GhostFake(GHOST_KEY, newsletters=["weekly"], archived=["old"], **kw),
        lambda fake: {"base_url": fake.url, "newsletter": "weekly"}, ghost),
    "mailchimp": Platform(
        "mailchimp", "MAILCHIMP_API_KEY", MAILCHIMP_KEY,
        lambda **kw: MailchimpFake(MAILCHIMP_KEY, lists=["a1b2c3d4e5"], **kw),
        lambda fake: {"base_url": fake.url, "list_id": "a1b2c3d4e5"}, mailchimp),
}


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PUBLISHER_NO_KEYRING", "1")
    for spec in PLATFORMS.values():
        monkeypatch.setenv(spec.env, spec.key)


@pytest.fixture(params=sorted(PLATFORMS))
def spec(request: pytest.FixtureRequest) -> Platform:
    return PLATFORMS[request.param]


@pytest.fixture
def fake(spec: Platform) -> Iterator[Any]:
    with spec.fake(subscribers=READERS).running() as running:
        yield running


def build(name: str, settings: dict[str, Any]) -> Any:
    """The channel as the core builds it: through the registry's class, from a settings table."""
    return registry.PLATFORM[name]().from_config(context_for(name, settings, SITE))


def api(spec: Platform, fake: Any, **settings: Any) -> Any:
    return build(spec.name, {**spec.settings(fake), "timeout": 2, **settings})


def draft(spec: Platform, key: str = "e" * 32, subject: str = "今週のお知らせ") -> shared.Draft:
    return shared.draft_for(newsletter(subject), key, SITE, "記事の題", spec.module.tags,
                            spec.module.escape)


def test_one_run_mails_every_reader_once_and_a_rerun_finds_the_sent_campaign(
    spec: Platform, fake: Any
) -> None:
    channel = api(spec, fake)
    channel.preflight()
    first = shared.deliver(channel, draft(spec))
    again = shared.deliver(api(spec, fake), draft(spec))
    assert again.provider_id == first.provider_id
    assert fake.audience.copies() == {reader: 1 for reader in READERS}
    assert fake.audience.sends == {first.provider_id: 1}
    assert first.extra["state"] == channel.lookup(first.provider_id).state


def test_a_run_killed_after_create_resumes_with_the_same_campaign(
    spec: Platform, fake: Any
) -> None:
    created = api(spec, fake).create(draft(spec))  # the crash comes right after this call
    assert not created.sent and fake.audience.copies() == {}
    resumed = shared.deliver(api(spec, fake), draft(spec))
    assert resumed.provider_id == created.id
    assert fake.audience.sends == {created.id: 1}
    assert set(fake.audience.copies().values()) == {1}


def test_another_edition_is_another_campaign(spec: Platform, fake: Any) -> None:
    one = shared.deliver(api(spec, fake), draft(spec, key="a" * 32, subject="第1号"))
    two = shared.deliver(api(spec, fake), draft(spec, key="b" * 32, subject="第2号"))
    assert one.provider_id != two.provider_id
    assert fake.audience.copies() == {reader: 2 for reader in READERS}


def test_proof_is_the_platforms_test_send_and_reaches_no_reader(
    spec: Platform, fake: Any
) -> None:
    receipt = shared.proof(api(spec, fake), draft(spec), ["editor@example.jp"])
    assert [p["email"] for p in fake.audience.proofs] == ["editor@example.jp"]
    assert fake.audience.copies() == {}
    sent = shared.deliver(api(spec, fake), draft(spec))  # the proofed draft is the one sent
    assert sent.provider_id == receipt.provider_id
    with pytest.raises(PermanentDeliveryError, match="already went to the list"):
        shared.proof(api(spec, fake), draft(spec), ["editor@example.jp"])


def test_wrong_credentials_are_permanent_and_masked(
    spec: Platform, fake: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong = {"ghost": "6489b2a1c0ffee0001a2b3c4:" + "77" * 32,
             "mailchimp": "ffffffffffffffffffffffffffffffff-us6"}.get(spec.name, "wrong-key-98765")
    monkeypatch.setenv(spec.env, wrong)
    with pytest.raises(PermanentDeliveryError) as caught:
        api(spec, fake).preflight()
    message = str(caught.value)
    assert ("HTTP 401" in message or "HTTP 403" in message) and "check the credentials" in message
    assert wrong not in message and wrong.split(":")[-1] not in message


@pytest.mark.parametrize(("name", "settings", "words"), [
    ("buttondown", {"newsletter": "elsewhere"}, "newsletter 'elsewhere'"),
    ("listmonk", {"lists": ["Newsletter", "Nobody"]}, "no list 'Nobody'"),
    ("ghost", {"newsletter": "old"}, "no active newsletter 'old'"),
    ("mailchimp", {"list_id": "zzzzzzzzzz"}, "no audience 'zzzzzzzzzz'"),
])
def test_preflight_names_a_missing_list_or_newsletter(
    name: str, settings: dict[str, Any], words: str
) -> None:
    spec = PLATFORMS[name]
    with spec.fake(subscribers=READERS).running() as fake, pytest.raises(
        ConfigError, match=words
    ) as caught:
        table = {**spec.settings(fake), "timeout": 2, **settings}
        config = Config(site=SITE, channels={name: table}, source="site/publisher.toml")
        registry.build_campaign(name, config).preflight()
    [field] = settings  # the file, the table and the key to fix
    assert caught.value.where == f"site/publisher.toml [channels.{name}] {field}"
    assert "\n" not in caught.value.one_line()


def test_429_is_transient_with_the_providers_wait(spec: Platform) -> None:
    faults = Faults(rate=1.0, kinds=("429",), reset_seconds=7)
    with spec.fake(subscribers=READERS, faults=faults).running() as fake, pytest.raises(
        TransientDeliveryError
    ) as caught:
        api(spec, fake).preflight()
    # Mailchimp documents no reset header: the shared backoff decides the wait.
    assert caught.value.retry_after == (None if spec.name == "mailchimp" else 7)


def test_merge_tags_replace_placeholders_and_article_template_syntax_stays_inert(
    spec: Platform, fake: Any
) -> None:
    hostile = "{{ .Subscriber.Email }} {% now 'Y' %} *|EMAIL|* %%{uuid}%%"
    news = newsletter(subject="号外")
    news = type(news)(subject=news.subject, preheader="", text=news.text,
                      html=news.html.replace("本文です。", hostile))
    made = shared.draft_for(news, "c" * 32, SITE, "題", spec.module.tags, spec.module.escape)
    shared.deliver(api(spec, fake), made)
    [sent] = {m["html"] for m in fake.audience.deliveries.messages}
    expected = {
        "buttondown": ("{{ unsubscribe_url }}", "{% templatetag openvariable %} .Subscriber"),
        "listmonk": ("{{ UnsubscribeURL }}", '{{ "{{" }} .Subscriber.Email'),
        "ghost": ("%%{unsubscribe_url}%%", "%%&#123;uuid}%%"),
        "mailchimp": ("*|UNSUB|*", "*&#124;EMAIL|*"),
    }[spec.name]
    assert all(piece in sent for piece in expected)
    assert "\ue000" not in sent  # no publisher marker is left for the platform


def test_ghost_tokens_are_fresh_hs256_jwts_for_admin_lasting_five_minutes() -> None:
    token = ghost.admin_token("6489b2a1c0ffee0001a2b3c4", "5e" * 32, now=1_700_000_000)
    head, claims, _ = (json.loads(base64.urlsafe_b64decode(part + "==")) if i < 2 else part
                       for i, part in enumerate(token.split(".")))
    assert head == {"alg": "HS256", "typ": "JWT", "kid": "6489b2a1c0ffee0001a2b3c4"}
    assert claims == {"iat": 1_700_000_000, "exp": 1_700_000_300, "aud": "/admin/"}


def test_ghost_refuses_a_stale_token_and_a_malformed_key(monkeypatch: pytest.MonkeyPatch) -> None:
    with GhostFake(GHOST_KEY, newsletters=["weekly"]).running() as fake:
        stale = ghost.admin_token(GHOST_KEY[:24], GHOST_KEY[25:], now=1_000_000)
        answer = fake.handle(_request("GET", "/ghost/api/admin/newsletters/", f"Ghost {stale}"))
        assert answer.status == 401 and "jwt expired" in answer.body["errors"][0]["message"]
    monkeypatch.setenv("GHOST_ADMIN_API_KEY", "not-an-admin-key")
    with pytest.raises(ConfigError, match="not an Admin API key"):
        build("ghost", {"base_url": "http://127.0.0.1:9", "newsletter": "weekly"})


def test_mailchimp_uses_the_keys_data_centre(monkeypatch: pytest.MonkeyPatch) -> None:
    with MailchimpFake(MAILCHIMP_KEY, lists=["a1b2c3d4e5"]).running() as fake:
        build("mailchimp", {"base_url": fake.url, "list_id": "a1b2c3d4e5"}).preflight()
        monkeypatch.setenv("MAILCHIMP_API_KEY", MAILCHIMP_KEY[:-1] + "9")  # a key from us9
        with pytest.raises(PermanentDeliveryError, match="wrong datacenter"):
            build("mailchimp", {"base_url": fake.url, "list_id": "a1b2c3d4e5"}).preflight()
    monkeypatch.setenv("MAILCHIMP_API_KEY", "no-suffix")
    with pytest.raises(ConfigError, match="not a Mailchimp API key"):
        build("mailchimp", {"list_id": "a1b2c3d4e5"})


def test_mailchimp_refuses_to_send_a_campaign_without_content() -> None:
    with MailchimpFake(MAILCHIMP_KEY, subscribers=READERS).running() as fake:
        channel = build("mailchimp", {"base_url": fake.url, "list_id": "a1b2c3d4e5"})
        made = channel.create(draft(PLATFORMS["mailchimp"]))
        with pytest.raises(PermanentDeliveryError, match="not ready to send"):
            channel.http.request("POST", f"/campaigns/{made.id}/actions/send")
    assert fake.audience.copies() == {}


def test_listmonk_starts_only_drafts() -> None:
    spec = PLATFORMS["listmonk"]
    with spec.fake(subscribers=READERS).running() as fake:
        channel = api(spec, fake)
        made = shared.deliver(channel, draft(spec))
        with pytest.raises(PermanentDeliveryError, match="Only paused campaigns and drafts"):
            channel.http.request("PUT", f"/api/campaigns/{made.provider_id}/status",
                                 json={"status": "running"})
    assert fake.audience.sends == {made.provider_id: 1}


@pytest.mark.parametrize("name", ["buttondown", "listmonk", "ghost", "mailchimp"])
def test_missing_settings_are_one_line_config_errors(name: str) -> None:
    needed = {"buttondown": None, "listmonk": "base_url", "ghost": "base_url",
              "mailchimp": "list_id"}[name]
    if needed is None:  # Buttondown needs only its key
        build(name, {})
        return
    with pytest.raises(ConfigError, match=f"{needed} is not set"):
        build(name, {})
    with pytest.raises(ConfigError, match="unknown key 'colour'"):
        build(name, {"colour": "red"})


def _request(method: str, path: str, auth: str) -> Any:
    from tests.fakes.server import Request

    return Request(method=method, path=path, query={}, headers={"authorization": auth}, body=b"")
