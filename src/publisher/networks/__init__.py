"""What each social network is: its limit, how it counts, links and hashtags."""
