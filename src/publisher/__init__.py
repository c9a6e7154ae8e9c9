"""publisher: one Markdown article in, a newsletter, social posts and an FAQ digest out."""

__version__ = "0.1.0"
