"""A WordPress post through its REST API, read into the same Article a Markdown post gives."""
