"""Local stand-ins for the services publisher talks to: real servers on 127.0.0.1, real contracts.

`server` is the shared threaded HTTP server with fault injection and delivery records;
`sendgrid`, `postmark` and `resend` enforce each email API's contract; `smtp` wraps aiosmtpd.
Tests import them as `from tests.fakes.sendgrid import SendGridFake`; `python -m fakes` runs one,
several or all of them from tests/ on their own, printing the config that reaches them (see
__main__.py).
"""
