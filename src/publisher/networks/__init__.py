"""The networks posts are composed for: one module declares each one's facts; this is the registry.

Config, front matter, the composer, the counters and the preview read `NETWORKS`; adding a
network is its module plus its entry below (the order is the default order of posts).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from publisher.errors import InputError
from publisher.networks import bluesky, linkedin, mastodon, threads, x
from publisher.networks.network import Network

NETWORKS: Mapping[str, Network] = MappingProxyType({
    module.NETWORK.name: module.NETWORK for module in (x, bluesky, mastodon, threads, linkedin)
})
NAMES: tuple[str, ...] = tuple(NETWORKS)
FAQ_SUFFIX = "-faq"  # an edition's `x-faq` output holds X posts, one per FAQ item


def get_network(name: str, *, where: str = "network") -> Network:
    """The network called `name`; an unknown name is an InputError listing the known ones."""
    network = NETWORKS.get(name)
    if network is None:
        raise InputError(f"unknown network {name!r}", where=where,
                         fix=f"use one of: {', '.join(NAMES)}")
    return network


def output_network(output: str) -> Network:
    """The network an edition's social output is for: `x` and `x-faq` are both X's."""
    return get_network(output.removesuffix(FAQ_SUFFIX), where="output")
