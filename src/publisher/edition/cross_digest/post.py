"""A cross-post FAQ digest as a post of its own, so it is published like any other edition.

The post reads back as the same FAQ: one `## FAQ: [article](url)` section per article with
its questions as `###` sub-headings, so publishing it gives the digest's questions, its link
(`url:`) and the articles' tags (`tags:`) to the newsletter, the JSON-LD and the social posts.
"""

from __future__ import annotations

import json

from publisher.edition.cross_digest.merge import CrossDigest, DigestGroup
from publisher.source.faq import faq_label, inert_html, markdown_text

TITLES = {"ja": "よくある質問まとめ", "en": "FAQ digest"}
LEADS = {
    "ja": "最近の{posts}本の記事から、読者の質問{questions}件をまとめました。",
    "en": "{questions} reader {question_word} from {posts} recent {post_word}, in one place.",
}
HEADING_SEPARATOR = {"ja": "：", "en": ": "}


def digest_post_markdown(digest: CrossDigest, *, date: str, slug: str, url: str = "") -> str:
    """Front matter (title, lang, date, slug, url, summary, tags), the lead, then per article
    its questions and full answers."""
    lang = digest_lang(digest)
    lead = digest_lead(digest)
    front: dict[str, object] = {"title": TITLES[lang], "lang": lang, "date": date, "slug": slug}
    if url:
        front["url"] = url
    front["summary"] = lead
    if digest.tags:
        front["tags"] = list(digest.tags)
    header = "\n".join(
        f"{key}: {json.dumps(value, ensure_ascii=False)}" for key, value in front.items()
    )
    sections = "\n\n".join(_section(group, lang) for group in digest.groups)
    return f"---\n{header}\n---\n{lead}\n\n{sections}\n"


def digest_lang(digest: CrossDigest) -> str:
    """The language of the digest's own words (English when we have none of its own)."""
    return digest.lang if digest.lang in TITLES else "en"


def digest_lead(digest: CrossDigest) -> str:
    """How many questions from how many posts: the same numbers `publish digest` prints."""
    questions, posts = len(digest.items), digest.posts
    return LEADS[digest_lang(digest)].format(
        questions=questions, posts=posts,
        question_word="question" if questions == 1 else "questions",
        post_word="post" if posts == 1 else "posts",
    )


def _section(group: DigestGroup, lang: str) -> str:
    """`## FAQ: [title](url)` (an FAQ heading the parser knows), then `### question` + answer."""
    title = markdown_text(group.title)
    linked = f"[{title}]({group.url})" if group.url else title
    parts = [f"## {faq_label(lang)}{HEADING_SEPARATOR[lang]}{linked}"]
    for entry in group.entries:
        parts.append(f"### {inert_html(' '.join(entry.item.question.split()))}")
        parts.append(inert_html(entry.item.answer.strip()))
    return "\n\n".join(parts)
