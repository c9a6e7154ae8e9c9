"""What an article is about, said the way an editor would say it (the summary rules).

The summary every output starts from (social posts, the inbox preview line, link cards) is,
in order of preference:

1. the editor's own: front matter `summary:`/`description:`, else the prose of a summary
   section (any heading `blocks.heading_role` reads as one: まとめ, 要約, ポイント, 結論,
   Summary, The bottom line, In short, What it means, Key takeaways, TL;DR, …);
2. else the lead read as an inverted pyramid (`pyramid`): the first sentence that states a
   fact (who, what, when), then the sentences right after it. Never chosen: meta sentences
   about the article itself (`is_meta`: 本記事では…, In this article…, いかがでしたでしょうか);
   questions; fragments. A sentence that leans on an earlier one (`leans_on_previous`: 今回の
   判断は, この, This, It, The jump) only follows the sentence it leans on. A quoted reaction
   (`is_reaction`: 「…」との声, called it "…") only comes after the fact, never instead of it;
3. else the title.

Key points are the summary section's list items (or its sentences), else the topic sentence of
each body section, else none: a list of random sentences is worse than no list. Everything here
is plain rules over plain text: offline, deterministic, linear in the text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Literal

from publisher.model import Article, Block, Section
from publisher.source.blocks import heading_role, join_lines, markdown_plain_text
from publisher.text.cjk import has_any
from publisher.text.sentences import split_sentences

# An all-capitals Latin name run straight into Japanese text (kana, CJK ideographs): a byline,
# not the story. The name's pattern never ends before a kana or ideograph, so testing the one
# character after its longest match finds what a lookahead class would (without compiling it).
CAPITALS_NAME = re.compile(r"^[A-Z][A-Z.'-]+(?: [A-Z][A-Z.'-]+){1,3}")
JAPANESE_RANGES = ((0x3040, 0x30FF), (0x3400, 0x9FFF))
# "TL;DR: …", "In short: …", "【まとめ】…": a paragraph opened by a summary label.
SUMMARY_LABEL = re.compile(
    r"^(?:【(?P<bracketed>[^】\n]{1,20})】|(?P<label>[^:：\n]{1,24})[:：])\s*(?P<rest>\S[\s\S]*)$"
)
SentenceKind = Literal["fact", "leaning", "reaction", "meta", "question", "fragment"]
# Shorter than this, a "sentence" is usually a heading, a byline or a fragment.
MIN_CHARS = 12
MAX_KEY_POINTS = 6
CLOSERS = "」』）)\"'”’"
META = re.compile(
    # Japanese: the article talking about itself, or the blog sign-off.
    r"^(?:本記事|この記事|当記事|本稿|本ページ|このページ|今回の記事)(?:では|は|で|を)"
    r"|^今回は.{0,40}(?:ご?紹介|解説|説明|まとめ)"
    r"|(?:ご?紹介|解説|説明|お伝え)(?:して)?(?:いき)?(?:ます|しました|しましょう)[。！]?$"
    r"|(?:ポイント|要点|内容)を(?:まとめ|整理し)(?:ます|ました)[。！]?$"
    r"|見ていき(?:ましょう|ます)|いかがでしたでしょうか|いかがでしたか|参考にしてください"
    r"|最後までお読み|お読みいただき"
    # English: the same moves.
    r"|^(?:in|throughout) this (?:article|post|piece|guide|story|explainer|newsletter|issue)\b"
    r"|^this (?:article|post|piece|guide|explainer) (?:will|explains|looks|covers|describes)\b"
    r"|^(?:here's|here is|below is|below are) (?:what|everything|how|a look)\b"
    r"|^(?:read on|keep reading|let's (?:dive|take a look|look|explore))\b"
    r"|^we(?:'ll| will) (?:explain|look|walk|cover|break)\b|\bthanks for reading\b",
    re.IGNORECASE,
)
LEANING = re.compile(
    r"^(?:この(?!度|たび|ほど)|その|これ(?!まで|から)|それ|あの|こうした|こういった|そうした|このような|そのような|今回の"
    r"|同(?:社|市|県|町|村|区|氏|省|庁|局|国|党|日|年)|上記|前述|こちら|そこで|また|さらに"
    r"|しかし|一方|なお|ただし|そのため|これにより|だが|でも|つまり|したがって|加えて|彼)"
    r"|^(?:this|that|these|those|it|its|they|them|their|he|she|his|her|such|also|however|but"
    r"|and|or|so|yet|meanwhile|still|instead|moreover|furthermore|additionally|besides"
    r"|nevertheless|then|as a result|in addition|on the other hand|by contrast|in response"
    r"|even so)\b"
    r"|^the (?:move|jump|change|decision|increase|rise|hike|cut|plan|proposal|step|announcement"
    r"|deal|news|shift|measure|ruling|vote|figure|latter|former|same|company|agency|board"
    r"|group|official|spokesperson)\b(?! (?:to|of|for|by|that|on)\b)",
    re.IGNORECASE,
)
# A quotation attributed to someone: 「…」と述べた / との声, "…," she said / called it '…'.
# A quote's body excludes its own opener, so a run of openers is scanned once (linear).
QUOTED = re.compile(
    r"「[^「」]{2,}」|『[^『』]{2,}』|[\"“][^\"“”]{2,}[\"”]|(?<!\w)['‘][^'‘’]{2,}['’](?!\w)"
)
ATTRIBUTION = re.compile(
    r"」(?:と|との|という)|』(?:と|との)|\b(?:said|says|called|calls|told|tells|argued|warned"
    r"|added|praised|criticized|criticised|described|according to|complained|insisted)\b",
    re.IGNORECASE,
)


def classify(sentence: str) -> SentenceKind:
    """What a sentence does in a lead, which decides whether it may open a summary."""
    if is_meta(sentence):
        return "meta"
    if sentence.rstrip(CLOSERS).endswith(("?", "？")):
        return "question"
    if len(sentence) < MIN_CHARS:
        return "fragment"
    if is_reaction(sentence):
        return "reaction"
    if leans_on_previous(sentence):
        return "leaning"
    return "fact"


def is_meta(sentence: str) -> bool:
    """A sentence about the article itself (本記事では…, In this article…), not the news."""
    return META.search(sentence.strip()) is not None


def leans_on_previous(sentence: str) -> bool:
    """A sentence that needs the one before it to make sense (今回の判断は, This, The jump)."""
    return LEANING.match(sentence.strip().lstrip("「\"“'‘(（")) is not None


def is_reaction(sentence: str) -> bool:
    """A quoted reaction: someone's words in quotation marks, attributed to them."""
    return QUOTED.search(sentence) is not None and ATTRIBUTION.search(sentence) is not None


def pyramid(sentences: Sequence[str], *, max_sentences: int = 2) -> list[str]:
    """The first fact, then what directly follows it, as the inverted pyramid puts a story."""
    kinds = [classify(s) for s in sentences]
    start = next((i for i, kind in enumerate(kinds) if kind == "fact"), None)
    if start is None:
        return []
    picked = [start]
    for i in range(start + 1, len(sentences)):
        if len(picked) >= max_sentences:
            break
        if kinds[i] in ("fact", "reaction") or (kinds[i] == "leaning" and picked[-1] == i - 1):
            picked.append(i)
    return [sentences[i] for i in picked]


def summary_sentences(article: Article, *, max_sentences: int = 2) -> list[str]:
    """The editor's summary as prose sentences, else the lead's pyramid; [] when neither."""
    if article.summary.strip():
        return split_sentences(plain(article.summary))
    prose = _summary_prose(article) or _labelled_summary(article)
    if prose:
        return prose
    return pyramid(_lead_sentences(article), max_sentences=max_sentences)


def summary_points(article: Article) -> list[str]:
    """The summary section's first list, one plain line per item; [] when it has none."""
    section = article.section("summary")
    first = _first_text_block(section)
    if first is None or first.kind not in ("bullet_list", "ordered_list"):
        return []
    return list_points(first)


def key_points(article: Article) -> list[str]:
    """The summary's points, else each body section's topic sentence; [] rather than filler."""
    section = article.section("summary")
    if section is not None:
        for block in section.blocks:
            if block.kind in ("bullet_list", "ordered_list") and block.items:
                return list_points(block)[:MAX_KEY_POINTS]
        sentences = _sentences(b for b in section.blocks if b.kind == "paragraph")
        points = [s for s in sentences if not is_meta(s)]
        if points:
            return points[:MAX_KEY_POINTS]
    topics = [
        picked[0]
        for s in article.sections
        if s.role == "body" and (picked := pyramid(_sentences(_paragraphs(s)), max_sentences=1))
    ]
    return topics[:MAX_KEY_POINTS] if len(topics) >= 2 else []


def list_points(block: Block) -> list[str]:
    """List items as plain one-line points."""
    return [" ".join(plain(item).split()) for item in block.items if item.strip()]


@lru_cache(maxsize=256)
def plain(markdown: str) -> str:
    """Markdown as the text a reader sees, one line per paragraph or item (memoized: every
    post of an edition starts from the same summary)."""
    return "\n".join(join_lines(p.split("\n")) for p in markdown_plain_text(markdown))


def clear_caches() -> None:
    """Forget memoized plain texts (benchmarks measure a cold edition with it)."""
    plain.cache_clear()


def _summary_prose(article: Article) -> list[str]:
    """Sentences of the summary section's first paragraph, without meta sentences."""
    first = _first_text_block(article.section("summary"))
    if first is None or first.kind != "paragraph":
        return []
    return [s for s in split_sentences(first.text) if not is_meta(s)]


def _lead_sentences(article: Article) -> list[str]:
    """Sentences of the lead's paragraphs, else of the first body section's (no lead at all)."""
    paragraphs = [b for b in article.lead if b.kind == "paragraph"]
    if not paragraphs:
        body = next((s for s in article.sections if s.role == "body"), None)
        paragraphs = _paragraphs(body) if body else []
    sentences = _sentences(paragraphs)
    if sentences:
        sentences[0] = without_byline(sentences[0])
    return sentences


def without_byline(sentence: str) -> str:
    """The first sentence without a byline a scraped page glued to it ("TARO YAMADA市は…")."""
    name = CAPITALS_NAME.match(sentence)
    if name is None or not has_any(sentence[name.end():name.end() + 1], JAPANESE_RANGES):
        return sentence
    return sentence[name.end():]


def _labelled_summary(article: Article) -> list[str]:
    """A paragraph that names itself a summary: "TL;DR: …", "**In short:** …", "【まとめ】…"."""
    body = (b for s in article.sections if s.role == "body" for b in s.blocks)
    for block in (*article.lead, *body):
        match = SUMMARY_LABEL.match(block.text) if block.kind == "paragraph" else None
        if match and heading_role(match["bracketed"] or match["label"]) == "summary":
            return [s for s in split_sentences(match["rest"]) if not is_meta(s)]
    return []


def _first_text_block(section: Section | None) -> Block | None:
    """The first block with visible text in a section, past headings and meta-only paragraphs
    ("今回の記事のポイントをまとめます。" before the list is not the summary)."""
    for block in section.blocks if section else ():
        if not block.text.strip() or block.kind == "heading":
            continue
        if block.kind == "paragraph" and all(is_meta(s) for s in split_sentences(block.text)):
            continue
        return block
    return None


def _paragraphs(section: Section) -> list[Block]:
    """A section's paragraphs."""
    return [b for b in section.blocks if b.kind == "paragraph"]


def _sentences(blocks: Iterable[Block]) -> list[str]:
    """Every sentence of these blocks' plain text, in order."""
    return [s for b in blocks for s in split_sentences(b.text)]
