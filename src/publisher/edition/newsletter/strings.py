"""The newsletter's own words (its chrome), in Japanese and English, overridable per language."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date

from publisher.config.settings import Config
from publisher.errors import ConfigError

BUILTIN: Mapping[str, Mapping[str, str]] = {
    "en": {
        "subject_prefix": "",
        "greeting": "Hi {name},",
        "reader": "there",
        "by": "By {author}",
        "read_online": "View this email in your browser",
        "read_on_web": "Read on the web",
        "key_points": "Key points",
        "faq": "FAQ",
        "question": "Q",
        "answer": "A",
        "why_received": "You receive this email because you subscribed to {site}.",
        "unsubscribe": "Unsubscribe",
        "links": "Links",
        "image": "Image",
        "logo_alt": "{site}",
    },
    "ja": {
        "subject_prefix": "",
        "greeting": "{name}様",
        "reader": "読者の皆",
        "by": "文：{author}",
        "read_online": "ブラウザで表示",
        "read_on_web": "Webで続きを読む",
        "key_points": "要点",
        "faq": "よくある質問",
        "question": "Q",
        "answer": "A",
        "why_received": (
            "このメールは{site}のニュースレターにご登録いただいた方にお送りしています。"
        ),
        "unsubscribe": "配信停止",
        "links": "リンク",
        "image": "画像",
        "logo_alt": "{site}",
    },
}
DEFAULT_LANG = "en"
EN_MONTHS = (
    "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December",
)


def base_lang(lang: str) -> str:
    """'ja-JP' → 'ja': chrome is chosen by the primary language subtag."""
    return (lang or DEFAULT_LANG).replace("_", "-").split("-", 1)[0].lower()


def chrome_strings(lang: str, config: Config) -> dict[str, str]:
    """Built-in strings for the language (English if unknown), then the config overrides."""
    primary = base_lang(lang)
    strings = dict(BUILTIN.get(primary, BUILTIN[DEFAULT_LANG]))
    overrides = config.newsletter.strings
    for key in dict.fromkeys((primary, lang)):
        for name, value in overrides.get(key, {}).items():
            if name not in strings:
                raise ConfigError(
                    f"unknown newsletter string {name!r}",
                    where=f"{config.source or 'publisher.toml'} [newsletter.strings.{key}]",
                    fix=f"use one of: {', '.join(sorted(strings))}",
                )
            strings[name] = str(value)
    return strings


def fill(strings: Mapping[str, str], key: str, **values: str) -> str:
    """One chrome string with its {placeholders} filled; a typo in an override is a ConfigError."""
    try:
        return strings[key].format_map(values)
    except (KeyError, IndexError, ValueError) as exc:
        raise ConfigError(
            f"newsletter string {key!r} has a bad placeholder ({exc})",
            where="[newsletter.strings]",
            fix=f"use only {', '.join('{' + v + '}' for v in values) or 'no placeholders'}",
        ) from exc


def display_date(iso: str, lang: str) -> str:
    """An ISO date as readers of the language write it; anything unparsable is shown as written."""
    try:
        day = date.fromisoformat(iso[:10])
    except ValueError:
        return iso
    if base_lang(lang) == "ja":
        return f"{day.year}年{day.month}月{day.day}日"
    return f"{EN_MONTHS[day.month - 1]} {day.day}, {day.year}"
