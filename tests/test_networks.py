"""The network registry is the one source: config, front matter, composer and counters agree."""

from __future__ import annotations

from dataclasses import replace

import pytest

from publisher.config.load import config_from_mapping
from publisher.config.settings import SocialSettings
from publisher.edition.social import compose_social, highlights, target_for
from publisher.errors import ConfigError, InputError
from publisher.model import Article, Block, FaqDigest
from publisher.networks import NAMES, NETWORKS, get_network, output_network
from publisher.networks.counting import measure
from publisher.networks.hashtags import hashtags
from publisher.networks.network import Card, Counting
from publisher.source.read import parse_article

EMPTY_DIGEST = FaqDigest(items=(), short_answers=(), jsonld={}, markdown="", html="")
UNKNOWN = "myspace"


def sample_article(**fields: object) -> Article:
    text = "A new tram line opens in spring. It halves the trip downtown."
    base = Article(
        source="posts/test.md", title="Tram line opens", body_markdown=text,
        lead=(Block("paragraph", text, text),), sections=(), lang="en",
        url="https://example.com/posts/tram", tags=("public transport",),
    )
    return replace(base, **fields)  # type: ignore[arg-type]


def test_every_module_declares_one_network_under_its_own_name() -> None:
    assert NAMES == ("x", "bluesky", "mastodon", "threads", "linkedin")
    assert all(network.name == name for name, network in NETWORKS.items())
    assert len({network.counting for network in NETWORKS.values()}) == len(Counting)


def test_config_accepts_exactly_the_registry_networks() -> None:
    config = config_from_mapping({"social": {"networks": list(NAMES)}})
    assert config.social.networks == NAMES
    assert SocialSettings().networks == NAMES
    with pytest.raises(ConfigError) as info:
        config_from_mapping({"social": {"networks": [*NAMES, UNKNOWN]}})
    assert UNKNOWN in str(info.value)
    assert all(name in info.value.fix for name in NAMES)


def test_front_matter_accepts_exactly_the_registry_networks() -> None:
    lines = "".join(f'  {name}: "Text for {name}."\n' for name in NAMES)
    article = parse_article(f"---\ntitle: T\nsocial:\n{lines}---\nBody\n", source="posts/a.md")
    assert dict(article.social) == {name: f"Text for {name}." for name in NAMES}
    with pytest.raises(InputError) as info:
        parse_article(f'---\ntitle: T\nsocial:\n  {UNKNOWN}: "Hi"\n---\nB\n', source="posts/a.md")
    assert f"social.{UNKNOWN}" in str(info.value)
    assert all(name in info.value.fix for name in NAMES)


def test_composer_and_counters_accept_exactly_the_registry_networks() -> None:
    posts = compose_social(sample_article(), EMPTY_DIGEST, SocialSettings(networks=NAMES))
    assert tuple(posts) == NAMES
    for name, composed in posts.items():
        assert composed and all(p.limit == NETWORKS[name].limit for p in composed)
        assert measure(name, "hello").unit == NETWORKS[name].unit
    for reject in (lambda: target_for(UNKNOWN, SocialSettings()),
                   lambda: measure(UNKNOWN, "hello")):
        with pytest.raises(InputError) as info:
            reject()
        assert all(name in info.value.fix for name in NAMES)


def test_the_composer_reads_each_networks_facts() -> None:
    posts = compose_social(sample_article(image="hero.jpg"), EMPTY_DIGEST,
                           SocialSettings(networks=NAMES))
    for name, (first, *_) in posts.items():
        network = NETWORKS[name]
        assert bool(first.facets) == network.facets
        assert (first.card is not None) == (network.card is not Card.NONE)
    thread = compose_social(sample_article(), EMPTY_DIGEST, SocialSettings(networks=NAMES),
                            thread=True)
    assert all(NETWORKS[name].thread or len(p) == 1 for name, p in thread.items())


def test_threads_refuses_a_sixth_link_and_links_one_topic_tag() -> None:
    threads = get_network("threads")
    assert (threads.limit, threads.max_links) == (500, 5)
    five = " ".join(f"https://example.com/{i}" for i in range(5))
    assert measure("threads", five).fits
    six = measure("threads", f"{five} https://example.com/5")
    assert not six.fits and six.detail == "6 links > 5"
    assert hashtags(("one", "two"), "threads", limit=3) == ["#one"]
    assert hashtags(("x" * 51, "two"), "threads", limit=3) == ["#two"]
    assert [h.value for h in highlights("threads", "#one #two") if h.kind == "tag"] == ["one"]


def test_linkedin_commentary_is_3000_utf16_units() -> None:
    linkedin = get_network("linkedin")
    assert (linkedin.limit, linkedin.counting) == (3000, Counting.UTF16)
    assert measure("linkedin", "👍" * 1500).fits
    assert not measure("linkedin", "👍" * 1501).fits


def test_a_faq_output_belongs_to_its_network() -> None:
    assert output_network("bluesky-faq") is NETWORKS["bluesky"]
    with pytest.raises(InputError):
        get_network("bluesky-faq")


def test_a_servers_own_limits_reach_only_the_networks_whose_servers_set_them() -> None:
    from publisher.config.settings import Config
    from publisher.edition.build import build_edition
    from publisher.edition.newsletter.render import load_templates

    told = {name: {"limit": 1000, "url_length": 40} for name in NAMES}  # as preflight says
    edition = build_edition(sample_article(), Config(), load_templates(None), hints=told)
    assert any(network.instance_limits for network in NETWORKS.values())
    for name, posts in edition.social.items():
        network = output_network(name)
        assert posts and all(p.limit == (1000 if network.instance_limits else network.limit)
                             for p in posts), name
    for name, network in NETWORKS.items():  # the [social] defaults are the declared facts
        if network.instance_limits:
            assert SocialSettings().instance_limits(name) == (network.limit, network.url_length)
            told_settings = SocialSettings().with_server_limits(name, {"limit": 700})
            assert told_settings.instance_limits(name) == (700, network.url_length)
