"""An RSS or Atom feed as the source: `publish feed URL`."""
