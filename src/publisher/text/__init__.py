"""Text rules every stage shares: sentence boundaries and characters no output may carry."""
