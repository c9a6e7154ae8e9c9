"""Plan → channels → ledger: preparing media, sending, retracting, writing back."""
