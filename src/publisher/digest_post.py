"""A cross-post FAQ digest as a post of its own, so it is published like any other edition."""

from __future__ import annotations

import json

from publisher.digest import CrossDigest

TITLES = {"ja": "よくある質問まとめ", "en": "FAQ digest"}
LEADS = {
    "ja": "最近の{posts}本の記事から、読者の質問{questions}件をまとめました。",
    "en": "{questions} reader questions from our last {posts} posts, in one place.",
}


def digest_post_markdown(digest: CrossDigest, *, date: str, url: str = "") -> str:
    """Front matter plus one section per article (linked) with its questions and answers."""
    lang = digest.lang if digest.lang in TITLES else "en"
    front = {"title": TITLES[lang], "lang": lang, "date": date, "slug": f"faq-digest-{date}"}
    if url:
        front["url"] = url
    lead = LEADS[lang].format(posts=len(digest.groups), questions=len(digest.items))
    body = digest.markdown.split("\n", 1)[1].lstrip("\n") if digest.markdown.startswith("# ") else (
        digest.markdown
    )
    header = "\n".join(f"{key}: {json.dumps(value, ensure_ascii=False)}" for key, value in
                       front.items())
    return f"---\n{header}\n---\n{lead}\n\n{body}"
