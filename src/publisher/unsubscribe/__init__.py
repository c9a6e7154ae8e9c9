"""Readers' opt-outs: tokens, the unsubscribe page and webhooks, and providers' suppressions."""
