"""X: 280 weighted characters as twitter-text v3 counts them, every link as a 23-character t.co.

https://docs.x.com/resources/fundamentals/counting-characters
https://github.com/twitter/twitter-text/blob/master/config/v3.json
"""

from publisher.networks.network import Card, Counting, Network

NETWORK = Network(
    name="x",
    label="X",
    limit=280,
    unit="weighted characters",
    counting=Counting.TWITTER_TEXT,
    docs="https://docs.x.com/resources/fundamentals/counting-characters",
    url_length=23,  # t.co wraps every URL: transformedURLLength in config/v3.json
    thread=True,
    card=Card.HERO_IMAGE,
    max_images=4,
    # A link shows as its display_url, without the scheme, cut with an ellipsis.
    # https://developer.x.com/en/docs/basics/tco
    shown_link_chars=30,
)
