"""The HTTP seam's session reads the environment's proxy and CA settings once per origin."""

from __future__ import annotations

import pytest
import requests

from publisher.channels.http import _session_class

URLS = ("https://api.sendgrid.com/v3/mail/send", "http://127.0.0.1:8025/x",
        "https://intra.example/a", "https://intra.example:8443/b")


@pytest.mark.parametrize("proxied", [False, True])
def test_settings_are_requests_own_and_read_once_per_origin(
    monkeypatch: pytest.MonkeyPatch, proxied: bool
) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY", "REQUESTS_CA_BUNDLE",
                 "CURL_CA_BUNDLE", "http_proxy", "https_proxy", "no_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    if proxied:
        monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
        monkeypatch.setenv("NO_PROXY", "intra.example,127.0.0.1")
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/bundle.pem")
    ours, theirs = _session_class()(), requests.Session()
    for url in URLS:
        expected = theirs.merge_environment_settings(url, {}, None, None, None)
        assert ours.merge_environment_settings(url, {}, None, None, None) == expected
        given = theirs.merge_environment_settings(url, {"https": "http://p:1"}, True, False, None)
        assert ours.merge_environment_settings(url, {"https": "http://p:1"}, True, False,
                                               None) == given
    assert set(ours.environment) == {"https://api.sendgrid.com", "http://127.0.0.1:8025",
                                     "https://intra.example", "https://intra.example:8443"}
    before = theirs.merge_environment_settings(URLS[0], {}, None, None, None)
    first = ours.merge_environment_settings(URLS[0], {}, None, None, None)
    first["proxies"]["https"] = "changed by a caller"
    monkeypatch.setenv("HTTPS_PROXY", "http://later.example:1")  # read once: not seen any more
    assert ours.merge_environment_settings(URLS[0], {}, None, None, None) == before
    assert theirs.merge_environment_settings(URLS[0], {}, None, None, None) != before
