"""Bluesky: 300 graphemes and 3000 UTF-8 bytes of text; links and tags are facets we send.

app.bsky.feed.post: text maxGraphemes 300, maxLength 3000;
https://github.com/bluesky-social/atproto/blob/main/lexicons/app/bsky/feed/post.json
Tags: at most 64 graphemes (packages/api/src/rich-text/util.ts of bluesky-social/atproto).
"""

from publisher.networks.network import Account, Card, Counting, HashtagRules, Network

TAG_MAX_GRAPHEMES = 64

NETWORK = Network(
    name="bluesky",
    label="Bluesky",
    limit=300,
    unit="graphemes",
    counting=Counting.GRAPHEMES,
    docs="https://github.com/bluesky-social/atproto/blob/main/lexicons/app/bsky/feed/post.json",
    max_bytes=3000,
    facets=True,
    mentions=False,  # a mention needs a facet with the handle's DID, which composing cannot know
    hashtags=HashtagRules(max_graphemes=TAG_MAX_GRAPHEMES),
    thread=True,
    card=Card.LINK_CARD,
    max_images=4,  # app.bsky.embed.images: images maxLength 4
    account=Account("@{value}", setting="handle", default="{slug}.bsky.social"),
)
