"""FAQ digests across several posts."""
