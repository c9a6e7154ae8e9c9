"""LinkedIn: a post's commentary holds 3000 characters, counted as UTF-16 code units.

https://learn.microsoft.com/en-us/linkedin/marketing/community-management/shares/posts-api
(`commentary`, "little" text format); a multi-image post holds up to 20 images.
"""

from publisher.networks.network import Account, Card, Counting, Network

NETWORK = Network(
    name="linkedin",
    label="LinkedIn",
    limit=3000,
    unit="UTF-16 units",
    counting=Counting.UTF16,
    docs="https://learn.microsoft.com/en-us/linkedin/marketing/community-management/shares/posts-api",
    mentions=False,  # a mention is an annotation with the member's URN, not plain `@name`
    long_form=True,
    card=Card.LINK_CARD,  # sent as content.article: source, title, description, thumbnail
    max_images=20,
    account=Account("Newsletter"),  # the preview's stand-in for the author's name
)
