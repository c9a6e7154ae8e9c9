"""A feed as the source: `publish feed URL` against a local feed server and provider fakes."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from publisher.source.feed.choose import PASSED, PENDING, PUBLISHED, Limits, choose
from publisher.source.feed.parse import item_article, item_slug, parse_feed
from publisher.source.wordpress.article import WpPost, article_from_post
from tests.fakes.feed import FakeFeed, make_items
from tests.fakes.mastodon import FakeMastodon
from tests.fakes.sendgrid import SendGridFake
from tests.fakes.server import FakeHTTPServer, Faults, Reply
from tests.helpers import run_publish
from tests.helpers.e2e import (
    EMAIL_KEYS,
    SOCIAL_SECRETS,
    email_env,
    emails,
    seed_subscribers,
    write_config,
)

READERS = emails(3, domain="feed.example")
ENV = {**email_env("sendgrid"), **SOCIAL_SECRETS}
LINKED = re.compile(r"/2026/(story-\d+)/")
FEED_TABLE = '\n[feed]\nallow_private = ["127.0.0.1"]\n'


@pytest.fixture
def feed() -> Iterator[FakeFeed]:
    server = FakeFeed()
    yield server
    server.close()


@pytest.fixture
def live(workdir: Path) -> Iterator[tuple[SendGridFake, FakeMastodon]]:
    """SendGrid and Mastodon fakes, three subscribers, and a config that allows 127.0.0.1 feeds."""
    mastodon = FakeMastodon(token=SOCIAL_SECRETS["MASTODON_ACCESS_TOKEN"], processing_polls=0)
    with SendGridFake(api_key=EMAIL_KEYS["sendgrid"][1]).running() as sendgrid:
        config = write_config(workdir, transport="sendgrid", networks=["mastodon"], channels={
            "sendgrid": {"base_url": sendgrid.url},
            "mastodon": {"instance_url": mastodon.url}})
        config.write_text(config.read_text(encoding="utf-8") + FEED_TABLE, encoding="utf-8")
        seed_subscribers(workdir, READERS, ENV)
        try:
            yield sendgrid, mastodon
        finally:
            mastodon.close()


def local_config(workdir: Path) -> None:
    """Outbox only, feeds on 127.0.0.1 allowed."""
    (workdir / "publisher.toml").write_text(FEED_TABLE, encoding="utf-8")


def publish_feed(workdir: Path, url: str, *args: str) -> tuple[int, str, str]:
    result = run_publish("feed", url, *args, cwd=workdir, env=ENV)
    return result.returncode, result.stdout, result.stderr


def posted(mastodon: FakeMastodon) -> list[str]:
    """The item each status links to, in the order they were posted."""
    return [m.group(1) for s in mastodon.statuses if (m := LINKED.search(s["text"]))]


# --- the five-item feed, end to end -----------------------------------------------------------


def test_five_items_publish_five_editions_once_and_a_second_run_sends_nothing(
    workdir: Path, feed: FakeFeed, live: tuple[SendGridFake, FakeMastodon]
) -> None:
    sendgrid, mastodon = live
    code, out, err = publish_feed(workdir, f"{feed.url}/feed.xml", "--all")
    assert code == 0, err
    assert "5 published" in out
    folders = sorted(p.name for p in (workdir / "outbox").iterdir())
    assert folders == [f"story-{n}" for n in range(1, 6)]
    assert Counter(m["email"] for m in sendgrid.deliveries.messages) == Counter(
        {reader: 5 for reader in READERS})
    assert len(mastodon.statuses) == 5
    assert posted(mastodon) == [f"story-{n}" for n in range(1, 6)]  # the oldest first
    assert sum(1 for p in workdir.glob("outbox/*/edition.json")) == 5

    code, out, err = publish_feed(workdir, f"{feed.url}/feed.xml")
    assert code == 0, err
    assert "has not changed" in out and feed.answers(304) == 1
    feed.items.append(make_items(6)[5])  # a new item makes the feed change
    code, out, err = publish_feed(workdir, f"{feed.url}/feed.xml")
    assert code == 0, err
    assert "1 published, 5 published before" in out
    assert len(mastodon.statuses) == 6 and len(sendgrid.deliveries.messages) == 18


def test_a_reordered_feed_with_an_edited_item_posts_nothing_again_unless_resend(
    workdir: Path, feed: FakeFeed, live: tuple[SendGridFake, FakeMastodon]
) -> None:
    sendgrid, mastodon = live
    url = f"{feed.url}/atom.xml"
    assert publish_feed(workdir, url, "--all")[0] == 0
    assert len(mastodon.statuses) == 5
    guids = [i.guid for i in feed.items]
    feed.order = [guids[2], guids[0], guids[4], guids[1], guids[3]]
    feed.edit(1, html=feed.items[1].html.replace("resident meetings", "public hearings"),
              title=feed.items[1].title + " (corrected)")
    code, out, err = publish_feed(workdir, url)
    assert code == 0, err
    assert "0 published, 5 published before" in out
    assert len(mastodon.statuses) == 5 and len(sendgrid.deliveries.messages) == 15

    code, out, err = publish_feed(workdir, url, "--resend")
    assert code == 0, err
    assert "1 published, 4 published before" in out
    assert len(mastodon.statuses) == 6
    assert posted(mastodon)[-1] == "story-2"
    assert len(sendgrid.deliveries.messages) == 18
    assert "0 published" in publish_feed(workdir, url, "--resend")[1]


# --- limits -------------------------------------------------------------------------------------


def test_a_first_run_without_a_limit_is_refused_before_the_feed_is_read(
    workdir: Path, feed: FakeFeed
) -> None:
    local_config(workdir)
    code, _, err = publish_feed(workdir, f"{feed.url}/feed.xml")
    assert code == 2
    assert err.count("\n") == 1 and "--latest N, --since DATE or --all" in err
    assert feed.http.requests == [] and not (workdir / "outbox").exists()


def test_latest_leaves_the_archive_out_for_good_and_all_takes_it_later(
    workdir: Path, feed: FakeFeed
) -> None:
    local_config(workdir)
    url = f"{feed.url}/feed.xml"
    code, out, _ = publish_feed(workdir, url, "--latest", "2")
    assert code == 0 and "2 published, 3 older left out by the limit" in out
    assert sorted(p.name for p in (workdir / "outbox").iterdir()) == ["story-4", "story-5"]
    feed.items.append(make_items(6)[5])
    code, out, _ = publish_feed(workdir, url)
    # the three held back were never published: the summary must not say they were
    assert code == 0 and "1 published, 2 published before, 3 left out before." in out
    assert not (workdir / "outbox" / "story-1").exists()
    code, out, _ = publish_feed(workdir, url, "--all")
    assert code == 0 and "3 published, 3 published before" in out
    assert len(list((workdir / "outbox").iterdir())) == 6


def test_since_takes_the_items_dated_on_or_after_the_day(workdir: Path, feed: FakeFeed) -> None:
    local_config(workdir)
    code, out, err = publish_feed(workdir, f"{feed.url}/feed.xml", "--since", "2026-10-08",
                                  "--dry-run")
    assert code == 0, err
    assert out.count("would publish:") == 2 and "3 older left out" in out
    assert not (workdir / "outbox").exists()


@pytest.mark.parametrize(("args", "flag"), [
    (("--all", "--latest", "2"), "--all"),
    (("--latest", "0"), "--latest"),
    (("--since", "next week"), "--since"),
    (("--since", "2026-10-08T09:00"), "--since"),
])
def test_bad_limits_are_one_line_and_exit_2(
    workdir: Path, feed: FakeFeed, args: tuple[str, ...], flag: str
) -> None:
    local_config(workdir)
    code, _, err = publish_feed(workdir, f"{feed.url}/feed.xml", *args)
    assert code == 2 and err.count("\n") == 1 and flag in err
    assert feed.http.requests == []


# --- bad feeds -------------------------------------------------------------------------------


@pytest.mark.parametrize(("path", "code", "said"), [
    ("/missing.xml", 2, "HTTP 404"),
    ("/page.html", 2, "an HTML page"),
    ("/status.txt", 2, "not an RSS or Atom feed"),
])
def test_a_bad_feed_is_one_line_and_nothing_is_sent(
    workdir: Path, feed: FakeFeed, path: str, code: int, said: str
) -> None:
    local_config(workdir)
    got, _, err = publish_feed(workdir, feed.url + path, "--all")
    assert got == code and err.count("\n") == 1 and said in err, err
    assert "Traceback" not in err and not (workdir / "outbox").exists()


def test_a_failing_feed_server_is_exit_3(workdir: Path) -> None:
    local_config(workdir)
    server = FakeHTTPServer(lambda request: Reply(503, b"busy", {"Retry-After": "60"})).start()
    try:
        code, _, err = publish_feed(workdir, f"{server.url}/feed.xml", "--all")
    finally:
        server.stop()
    assert code == 3 and err.count("\n") == 1 and "HTTP 503" in err


def test_a_feed_on_a_private_address_is_refused_unless_allowed(
    workdir: Path, feed: FakeFeed
) -> None:
    code, _, err = publish_feed(workdir, f"{feed.url}/feed.xml", "--all")
    assert code == 2 and "non-public address 127.0.0.1" in err and "[feed] allow_private" in err
    assert feed.http.requests == [] and not (workdir / "outbox").exists()


def test_strict_stops_every_item_when_one_has_a_warning(workdir: Path, feed: FakeFeed) -> None:
    local_config(workdir)
    feed.edit(0, html=feed.items[0].html + "<p>\x0bcontrol</p>")
    code, _, err = publish_feed(workdir, f"{feed.url}/feed.xml", "--all", "--strict")
    assert code == 2 and "1 warning and --strict: nothing was sent" in err
    assert not (workdir / "outbox").exists()


def test_items_that_share_a_link_are_published_as_posts_of_their_own(
    workdir: Path, feed: FakeFeed
) -> None:
    local_config(workdir)
    feed.items[:] = [replace(item, slug="news") for item in feed.items[:3]]  # one link for all
    code, out, err = publish_feed(workdir, f"{feed.url}/feed.xml", "--all")
    assert code == 0, err
    assert "3 published" in out
    assert len(list((workdir / "outbox").iterdir())) == 3


def test_json_prints_each_published_edition(workdir: Path, feed: FakeFeed) -> None:
    local_config(workdir)
    result = run_publish("feed", f"{feed.url}/feed.xml", "--latest", "2", "--json",
                         cwd=workdir, env=ENV)
    assert result.returncode == 0, result.stderr
    editions = json.loads(result.stdout)
    assert [e["article"]["slug"] for e in editions] == ["story-4", "story-5"]
    planned = run_publish("feed", f"{feed.url}/feed.xml", "--all", "--dry-run", "--json",
                          cwd=workdir, env=ENV)
    assert [e["article"]["slug"] for e in json.loads(planned.stdout)] == [
        "story-1", "story-2", "story-3"]


# --- parsing and choosing (pure) ---------------------------------------------------------------


def test_rss_and_atom_give_the_same_articles_as_the_html_would_as_a_post(
    feed: FakeFeed
) -> None:
    rss = parse_feed(feed.rss(), url="https://weekly.example/feed.xml")
    atom = parse_feed(feed.atom(), url="https://weekly.example/atom.xml")
    assert [i.guid for i in rss.items] == [i.guid for i in atom.items]
    for a, b, source in zip(rss.items, atom.items, reversed(feed.items), strict=True):
        first = item_article(a, slug=item_slug(a), feed_url="f")
        second = item_article(b, slug=item_slug(b), feed_url="f")
        assert first == second
        twin = article_from_post(WpPost(
            link=a.link, slug=source.slug, title=source.title,
            date=source.published.date().isoformat(), author=a.author, excerpt=source.summary,
            content_html=source.html, terms=source.tags))
        assert first == twin
    japanese = item_article(rss.items[0], slug="s", feed_url="f")
    assert "共有" in rss.items[0].content_html and "共有" not in japanese.body_markdown
    assert [q.question for q in japanese.faq] == ["申し込みは必要ですか？", "問い合わせ先は？"]


def test_the_item_text_is_sanitized_as_a_post_is() -> None:
    body = (b'<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/">'
            b"<channel><title>t</title><item><title>x</title><guid>g1</guid>"
            b"<content:encoded><![CDATA[<p>Hi <script>alert(1)</script>"
            b'<a href="javascript:alert(2)">x</a> &lt;img src=x onerror=y&gt; '
            b'<a href="/rel">rel</a></p>]]></content:encoded></item></channel></rss>')
    item = parse_feed(body, url="https://site.example/feed").items[0]
    article = item_article(item, slug="x", feed_url="f")
    assert "alert(1)" not in article.body_markdown  # the <script> element is dropped
    blocks = "".join(b.markdown + str(b.items) for b in article.lead)
    assert "javascript" not in blocks  # the link keeps its label, loses its target
    assert "[rel](https://site.example/rel)" in blocks  # resolved against the item's link
    assert "<img src=x onerror=y>" in article.lead[0].text  # text that looks like a tag stays text


def test_an_item_without_a_guid_is_keyed_by_its_link() -> None:
    body = (b'<rss version="2.0"><channel><title>t</title><item><title>x</title>'
            b"<link>https://site.example/a/</link><description>d</description></item>"
            b"</channel></rss>")
    assert parse_feed(body, url="u").items[0].guid == "https://site.example/a/"


def test_choose_by_guid_not_by_place_or_text(feed: FakeFeed) -> None:
    items = parse_feed(feed.rss(), url="u").items
    oldest = sorted(items, key=lambda i: i.when or datetime.min.replace(tzinfo=UTC))
    guids = [i.guid for i in oldest]
    states = {guids[0]: PUBLISHED, guids[1]: PASSED, guids[2]: PENDING}
    plain = choose(items, states, Limits(), resend=False)
    assert [i.guid for i in plain.publish] == guids[2:]
    assert choose([*items, replace(items[0], title="edited")], states, Limits(),
                  resend=False).publish == plain.publish
    limited = choose(items, states, Limits(everything=True), resend=False)
    assert [i.guid for i in limited.publish] == guids[1:]
    latest = choose(items, {}, Limits(latest=2), resend=False)
    assert [i.guid for i in latest.publish] == guids[3:]
    assert [i.guid for i in latest.passed] == guids[:3]
    resent = choose(items, states, Limits(), resend=True)
    assert [i.guid for i in resent.publish] == [guids[0], *guids[2:]]


def test_polling_an_unchanged_feed_loads_no_edition_or_delivery_code(
    workdir: Path, feed: FakeFeed
) -> None:
    from tests.test_dry_run_imports import modules_after

    local_config(workdir)
    url = f"{feed.url}/feed.xml"
    assert publish_feed(workdir, url, "--latest", "1")[0] == 0
    loaded = modules_after(["feed", url], workdir)
    assert feed.answers(304) == 1 and "requests" in loaded  # it did ask the server
    heavy = ("publisher.delivery.pipeline", "publisher.edition.build", "publisher.delivery.send",
             "feedparser", "bs4", "mjml")
    assert sorted(loaded & set(heavy)) == []


def test_an_item_whose_delivery_failed_is_not_counted_as_published(
    workdir: Path, feed: FakeFeed, live: tuple[SendGridFake, FakeMastodon]
) -> None:
    _, mastodon = live
    # a reset further away than the retry policy accepts fails the post at once
    mastodon.set_faults(Faults(rate=1.0, kinds=("429",), reset_seconds=5000,
                               paths=("/api/v1/statuses",)))
    code, out, err = publish_feed(workdir, f"{feed.url}/feed.xml", "--latest", "1")
    assert code == 4, err
    assert "0 published, 1 not fully delivered" in out and "1 published" not in out
    mastodon.set_faults(Faults())
    code, out, err = publish_feed(workdir, f"{feed.url}/feed.xml")
    assert code == 0, err
    assert "1 published, 4 left out before." in out


def test_status_lists_each_feed_with_its_items_published_left_out_and_pending(
    workdir: Path, feed: FakeFeed
) -> None:
    local_config(workdir)
    url = f"{feed.url}/feed.xml"
    assert publish_feed(workdir, url, "--latest", "2")[0] == 0
    shown = run_publish("status", cwd=workdir, env=ENV)
    assert shown.returncode == 0, shown.stderr
    assert f"{url}: 2 published, 3 left out, 0 pending" in shown.stdout

    as_json = run_publish("status", "--json", cwd=workdir, env=ENV)
    assert as_json.returncode == 0, as_json.stderr
    [entry] = json.loads(as_json.stdout)["feeds"]
    assert (entry["feed"], entry["published"], entry["left_out"], entry["pending"]) == (
        url, 2, 3, 0)
    states = {item["guid"]: item["state"] for item in entry["items"]}
    assert Counter(states.values()) == {"published": 2, "left-out": 3}
    assert set(entry["items"][0]) == {"guid", "post", "state", "at"}
    assert all(datetime.fromisoformat(item["at"]).tzinfo for item in entry["items"])
    published = {i["post"] for i in entry["items"] if i["state"] == "published"}
    assert published == {"story-4", "story-5"}
