"""LinkedIn channel against a local Posts/Images API fake over real sockets."""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from publisher.channels import linkedin
from publisher.channels.http import RetryPolicy
from publisher.channels.images import ImageLoader
from publisher.errors import ConfigError, PermanentDeliveryError
from publisher.model import LinkCard
from tests.fakes.linkedin import FakeLinkedIn, shown_text
from tests.fakes.server import Faults
from tests.fakes.support import Sleeps, send_thread, thread_posts
from tests.helpers.channels import build_channel

TOKEN = "linkedin-test-token-123"
RESERVED_TEXT = ("Compost (finally) at 50% — [pilot] {phase_1} <today> a*b ~c~ \\ | @desk "
                 "https://news.example/a_(b)?x=1 #composting")


build = partial(build_channel, linkedin.LinkedInChannel)  # as the registry builds it


@pytest.fixture
def fake() -> Iterator[FakeLinkedIn]:
    server = FakeLinkedIn(token=TOKEN)
    yield server
    server.close()


def make(fake: FakeLinkedIn, monkeypatch: pytest.MonkeyPatch, **settings: object
         ) -> linkedin.LinkedInChannel:
    """A channel posting as the fake's member unless told otherwise."""
    monkeypatch.setenv("LINKEDIN_ACCESS_TOKEN", TOKEN)
    return build({"api_base": fake.url, "author": fake.author, "timeout": 2.0,
                                 **settings})


@pytest.fixture
def channel(fake: FakeLinkedIn, monkeypatch: pytest.MonkeyPatch
            ) -> Iterator[linkedin.LinkedInChannel]:
    made = make(fake, monkeypatch)
    yield made
    made.close()


def test_little_text_escapes_every_reserved_character_and_linkedin_shows_it_whole() -> None:
    escaped = linkedin.little_text(RESERVED_TEXT)
    assert "\\(finally\\)" in escaped and "\\[pilot\\]" in escaped and "\\{phase\\_1\\}" in escaped
    assert "\\<today\\>" in escaped and "a\\*b \\~c\\~ \\\\ \\| \\@desk" in escaped
    assert "https://news.example/a_(b)?x=1" in escaped  # a link stays a link
    assert escaped.endswith("{hashtag|\\#|composting}")
    assert shown_text(escaped) == RESERVED_TEXT
    assert shown_text(RESERVED_TEXT) == "Compost "  # unescaped, LinkedIn cuts it short


@given(st.text(alphabet=st.sampled_from("ab (){}[]<>#*_~\\|@ \n"), max_size=40))
def test_little_text_round_trips_any_mix_of_reserved_characters(text: str) -> None:
    assert shown_text(linkedin.little_text(text)) == text


def test_preflight_checks_the_member_behind_the_token(
    fake: FakeLinkedIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert make(fake, monkeypatch).preflight() == {"limit": 3000}
    with pytest.raises(PermanentDeliveryError, match="belongs to urn:li:person:AbC123xYz"):
        make(fake, monkeypatch, author="urn:li:person:someone").preflight()
    assert make(fake, monkeypatch, author="urn:li:organization:5515715").preflight()
    with pytest.raises(PermanentDeliveryError, match="HTTP 403"):
        make(fake, monkeypatch, author="urn:li:organization:42").preflight()
    monkeypatch.setenv("LINKEDIN_ACCESS_TOKEN", "expired-token-1")
    expired = build({"api_base": fake.url, "author": fake.author})
    with pytest.raises(PermanentDeliveryError, match="rejected") as caught:
        expired.preflight()
    assert "LINKEDIN_ACCESS_TOKEN" in caught.value.fix


def test_a_post_with_an_article_card_and_uploaded_thumbnail(
    channel: linkedin.LinkedInChannel, fake: FakeLinkedIn, tmp_path: Path
) -> None:
    Image.new("RGB", (120, 60), (10, 90, 40)).save(tmp_path / "card.png")
    card = LinkCard(uri="https://news.example/a", title="Compost", description="The pilot",
                    thumb="card.png")
    post = thread_posts("linkedin", [RESERVED_TEXT], card=card)[0]
    channel.prepare_media(post, key="k", images=ImageLoader(base_dir=tmp_path))
    receipt = channel.send_post(post, key="k", reply_to=None, root=None)
    (stored,) = fake.posts
    assert receipt.provider_id == stored["urn"] and stored["urn"].startswith("urn:li:share:")
    assert receipt.url == f"https://www.linkedin.com/feed/update/{stored['urn']}/"
    assert stored["shown"] == RESERVED_TEXT
    article = stored["content"]["article"]
    assert article["source"] == card.uri and article["title"] == "Compost"
    assert article["description"] == "The pilot"
    assert fake.images[article["thumbnail"]]["size"] > 0
    assert set(fake.versions) == {linkedin.VERSION}


def test_the_fake_refuses_a_thumbnail_that_was_never_uploaded_and_missing_headers(
    channel: linkedin.LinkedInChannel, fake: FakeLinkedIn
) -> None:
    body = {"author": fake.author, "commentary": "x", "visibility": "PUBLIC",
            "distribution": {"feedDistribution": "MAIN_FEED"}, "lifecycleState": "PUBLISHED",
            "content": {"article": {"source": "https://a.example", "title": "A",
                                    "thumbnail": "urn:li:image:nope"}}}
    refused = channel.http.request("POST", "/rest/posts", json=body, ok=(422,))
    assert set(refused.json()) >= {"status", "serviceErrorCode", "message"}
    unversioned = channel.http.request("POST", "/rest/posts", json=body, ok=(400,),
                                       headers={"LinkedIn-Version": ""})
    assert unversioned.json()["code"] == "VERSION_MISSING"
    assert fake.posts == []


def test_an_inactive_version_says_which_setting_to_change(
    fake: FakeLinkedIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = make(fake, monkeypatch, version="202312", author="urn:li:organization:5515715")
    with pytest.raises(PermanentDeliveryError, match="no longer serves version 202312"):
        old.preflight()


def test_edit_changes_the_commentary_once_and_delete_reports_gone(
    channel: linkedin.LinkedInChannel, fake: FakeLinkedIn
) -> None:
    first, second = thread_posts("linkedin", ["Before (draft)", "After (final) #news"])
    receipt = channel.send_post(first, key="k", reply_to=None, root=None)
    assert channel.edit_post(receipt, second, attempted_before=False) is True
    assert fake.texts() == ["After (final) #news"]
    assert channel.edit_post(receipt, second, attempted_before=True) is False
    assert channel.delete_post(receipt, attempted_before=False) is True
    assert fake.posts == [] and channel.delete_post(receipt, attempted_before=True) is False


def test_a_429_is_retried_and_the_post_made_once(
    channel: linkedin.LinkedInChannel, fake: FakeLinkedIn
) -> None:
    fake.set_faults(Faults(rate=1.0, kinds=("429",), paths=("/rest/posts",), only_first=2))
    sleeps = Sleeps()
    send_thread(channel, thread_posts("linkedin", ["One post"]), sleep=sleeps,
                policy=RetryPolicy(attempts=4))
    assert fake.texts() == ["One post"] and len(sleeps.delays) == 2
    assert fake.http.faults.injected["429"] == 2


def test_bad_author_version_and_visibility_are_config_errors(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LINKEDIN_ACCESS_TOKEN", TOKEN)
    with pytest.raises(ConfigError, match="not a person or organization URN"):
        build({"author": "me"})
    with pytest.raises(ConfigError, match="YYYYMM"):
        build({"author": "urn:li:person:a", "version": "2026-05"})
    with pytest.raises(ConfigError, match="visibility"):
        build({"author": "urn:li:person:a", "visibility": "EVERYONE"})
