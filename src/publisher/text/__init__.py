"""Text rules every stage shares: sentences, condensing, characters no output may carry."""
