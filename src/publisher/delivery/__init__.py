"""Plan → channels → ledger: the job in order, the send loop, and corrections after the send."""
