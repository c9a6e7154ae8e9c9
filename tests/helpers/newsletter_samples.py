"""Articles and FAQ digests built directly, so newsletter tests do not depend on the parser."""

from __future__ import annotations

from publisher.model import Article, Block, BlockKind, FaqDigest, FaqItem, Section, SectionRole
from publisher.source.markdown import markdown_parser

KINDS: dict[str, BlockKind] = {
    "paragraph_open": "paragraph", "bullet_list_open": "bullet_list",
    "ordered_list_open": "ordered_list", "blockquote_open": "blockquote", "fence": "code",
    "code_block": "code", "table_open": "table", "html_block": "html", "hr": "hr",
    "heading_open": "heading",
}


def blocks(markdown: str) -> tuple[Block, ...]:
    """Top-level Markdown blocks, as the article parser would split them."""
    lines = markdown.splitlines()
    found: list[Block] = []
    for token in markdown_parser().parse(markdown):
        if token.level != 0 or token.type not in KINDS or token.map is None:
            continue
        source = "\n".join(lines[token.map[0]:token.map[1]])
        text = " ".join(source.replace("#", "").replace("*", "").split())
        found.append(Block(KINDS[token.type], source, text, line=token.map[0] + 1))
    return tuple(found)


def section(heading: str, markdown: str, role: SectionRole = "body") -> Section:
    """A level-2 section."""
    return Section(heading=heading, level=2, blocks=blocks(markdown), role=role)


def digest(items: tuple[FaqItem, ...]) -> FaqDigest:
    """A digest with only what the newsletter reads."""
    return FaqDigest(items=items, short_answers=(), jsonld={}, markdown="", html="")


def english_article() -> Article:
    """An English post using every block kind the newsletter styles."""
    lead = "Small teams ship better newsletters when **one file** drives every channel."
    return Article(
        source="posts/en.md",
        title="One Markdown file, every channel",
        body_markdown="",
        lead=blocks(lead),
        sections=(
            section("Why one source", (
                "Copying text between tools drifts. See [the guide](/guide) and "
                "[the spec](https://spec.example.org/v1).\n\n"
                "- Write once\n- Review once\n  1. nested step\n- Send once\n\n"
                "> Quotes keep their voice.\n\n"
                "![A chart of open rates](/img/chart.png)\n\n"
                "| Channel | Limit |\n|---|---|\n| X | 280 |\n| Bluesky | 300 |\n\n"
                "```\npublish posts/hello.md\n```\n\n---\n\nAfter the rule.")),
            section("Summary", "- Fewer copies\n- Fewer mistakes", role="summary"),
        ),
        lang="en",
        slug="one-file",
        author="Ada Writer",
        date="2025-03-04",
        url="https://example.com/posts/one-file",
        image="/img/hero.jpg",
        image_alt="A desk with a notebook",
        summary="Why a single Markdown file makes a better newsletter.",
    )


def english_digest() -> FaqDigest:
    """Two FAQ items."""
    return digest((
        FaqItem("Does it work offline?", "Yes. The outbox needs **no** account."),
        FaqItem("Can I change the template?", "Use `--templates DIR`."),
    ))


def japanese_article() -> Article:
    """A Japanese post with a summary section and FAQ."""
    return Article(
        source="posts/ja.md",
        title="中央アジアと新しい資源外交の行方",
        body_markdown="",
        lead=blocks("各国の首脳会議に向けて、地域の役割が変わりつつあります。\n\n"
                    "本記事では背景を[わかりやすく](https://example.jp/guide)整理します。"),
        sections=(
            section("協議の主な内容", "- 紛争の平和的な解決\n- 貿易関係の拡大\n- 協力の強化"),
            section("資源をめぐる戦略", "重要鉱物の調達先を分散させる動きが進んでいます。"),
            section("まとめ", "地域の存在感は今後さらに高まると見られます。", role="summary"),
        ),
        lang="ja",
        slug="central-asia",
        author="山田 花子",
        date="2025-11-24",
        url="https://example.jp/posts/central-asia",
        image="https://example.jp/img/hero.webp",
        image_alt="会議場の外観",
    )


def japanese_digest() -> FaqDigest:
    """Three FAQ items."""
    return digest((
        FaqItem("なぜ今なのですか？", "資源の調達先を多様化する必要が高まったためです。"),
        FaqItem("正式な加盟国ですか？", "いいえ、特別ゲストとしての招待です。"),
        FaqItem("会場はどこですか？", "米国内のリゾートが予定されています。"),
    ))
