"""A channel in a test is built as the registry builds it: from its `[channels.<name>]` table."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol, Self, TypeVar

from publisher.channels import ChannelContext, context_for
from publisher.config.settings import Site


class Buildable(Protocol):
    """A channel class: its registry name and the one construction signature."""

    name: str

    @classmethod
    def from_config(cls, context: ChannelContext) -> Self: ...


C = TypeVar("C", bound=Buildable)


def build_channel(kind: type[C], settings: Mapping[str, object], site: Site | None = None) -> C:
    """The channel from a `[channels.<name>]` table (and a site), as the registry builds it."""
    return kind.from_config(context_for(kind.name, settings, site))
