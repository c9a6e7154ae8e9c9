"""Mastodon: 500 characters by default (each server sets its own), every http(s) link as 23.

StatusLengthValidator counts graphemes with URLs as 23 characters and `@user@domain` as `@user`;
https://github.com/mastodon/mastodon/blob/main/app/validators/status_length_validator.rb
Only URLs with a scheme are linked (app/lib/text_formatter.rb); 4 attachments per status.
https://docs.joinmastodon.org/methods/statuses/#create
"""

from publisher.networks.network import Account, Card, Counting, Network

NETWORK = Network(
    name="mastodon",
    label="Mastodon",
    limit=500,
    unit="characters",
    counting=Counting.MASTODON,
    docs="https://docs.joinmastodon.org/methods/statuses/#create",
    url_length=23,  # the instance's characters_reserved_per_url, read by preflight
    links_need_scheme=True,
    thread=True,
    card=Card.HERO_IMAGE,
    max_images=4,
    # TextFormatter drops the scheme and "www.", shows 30 characters and hides the rest.
    shown_link_chars=30,
    instance_limits=True,  # [social] mastodon_limit / mastodon_url_length, or preflight's
    attach_image=True,  # a status shows its attachment; a card only when it has none
    account=Account("@{slug}@{host}", setting="instance_url", default="https://mastodon.social"),
)
