"""Threads: 500 characters with each emoji counted as its UTF-8 bytes, at most 5 links.

"Text posts are limited to 500 characters. Emojis are counted as the number of UTF-8 bytes";
a post links one topic tag (its first hashtag, at most 50 characters) and up to 5 links;
a carousel holds up to 20 images. https://developers.facebook.com/documentation/threads/posts
"""

from publisher.networks.network import Card, Counting, HashtagRules, Network

NETWORK = Network(
    name="threads",
    label="Threads",
    limit=500,
    unit="characters",
    counting=Counting.THREADS,
    docs="https://developers.facebook.com/documentation/threads/posts",
    max_links=5,
    hashtags=HashtagRules(max_chars=50, linked_per_post=1),
    thread=True,  # a reply names its parent with reply_to_id
    card=Card.LINK_CARD,  # sent as link_attachment: the article's preview on the first post
    max_images=20,
)
