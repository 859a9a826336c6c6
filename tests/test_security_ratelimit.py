"""Rate limits: per key, per client address for anonymous callers, and for wrong keys.

``X-Forwarded-For`` is believed only from ``Settings.trusted_proxies``.
"""

from __future__ import annotations

from fastapi.testclient import TestClient

from service.main import create_app
from service.ratelimit import client_address, parse_networks

USER = "limit-user-0001"
OTHER = "limit-user-0002"
LIMIT = 3


def app_for(settings, **update):
    s = settings.model_copy(update={"llm_backend": "none", "api_keys": f"{USER}:a:user:public,{OTHER}:b:user:public",
                                     "rate_limit_per_minute": LIMIT, "auth_failures_per_minute": LIMIT, **update})
    return create_app(s)


def statuses(client, n, **kw):
    return [client.post("/v1/check", json={"information": "入札予定価格", "service": "ISMAP登録サービス"}, **kw).status_code for _ in range(n)]


def test_anonymous_callers_are_limited_per_address_not_all_together(settings, built_index):
    app = app_for(settings, allow_anonymous=True)
    with TestClient(app, client=("198.51.100.7", 5000)) as noisy:
        quiet = TestClient(app, client=("198.51.100.8", 5000))  # same app, another address (one lifespan is enough)
        assert statuses(noisy, LIMIT + 2)[-1] == 429
        # Another client is not locked out by the first one.
        assert statuses(quiet, 1) == [200]
        # A spoofed X-Forwarded-For from an untrusted peer changes nothing.
        r = noisy.post("/v1/check", json={"information": "入札予定価格"}, headers={"X-Forwarded-For": "192.0.2.99"})
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1


def test_forwarded_for_is_believed_only_from_a_trusted_proxy(settings, built_index):
    app = app_for(settings, allow_anonymous=True, trusted_proxies=["10.0.0.0/8"])
    with TestClient(app, client=("10.1.2.3", 5000)) as proxy:
        behind_a = {"X-Forwarded-For": "203.0.113.10"}
        behind_b = {"X-Forwarded-For": "203.0.113.11, 10.9.9.9"}  # a second trusted hop is peeled off
        assert statuses(proxy, LIMIT + 1, headers=behind_a)[-1] == 429
        assert statuses(proxy, 1, headers=behind_b) == [200]
    assert client_address("10.1.2.3", "203.0.113.11, 10.9.9.9", trusted=parse_networks(["10.0.0.0/8"])) == "203.0.113.11"
    assert client_address("198.51.100.1", "203.0.113.11", trusted=parse_networks(["10.0.0.0/8"])) == "198.51.100.1"


def test_each_key_has_its_own_bucket(settings, built_index):
    with TestClient(app_for(settings, allow_anonymous=False)) as c:
        assert statuses(c, LIMIT + 1, headers={"X-API-Key": USER})[-1] == 429
        assert statuses(c, 1, headers={"X-API-Key": OTHER}) == [200]


def test_wrong_keys_are_rate_limited_per_address(settings, built_index):
    app = app_for(settings, allow_anonymous=False)
    with TestClient(app, client=("198.51.100.20", 5000)) as guesser:
        staff = TestClient(app, client=("198.51.100.21", 5000))
        codes = [guesser.post("/v1/search", json={"query": "源内"}, headers={"X-API-Key": f"guess-{i:010d}"}).status_code for i in range(LIMIT + 3)]
        assert codes[:LIMIT] == [401] * LIMIT and codes[-1] == 429
        # Once the address is out of tries, even a right key waits: guessing cannot be interleaved.
        r = guesser.post("/v1/search", json={"query": "源内"}, headers={"X-API-Key": USER})
        assert r.status_code == 429 and r.json()["error"]["code"] == "rate_limited"
        missing = [guesser.post("/v1/search", json={"query": "源内"}).status_code for _ in range(2)]
        assert missing == [429, 429]
        # Other addresses are not affected.
        assert staff.post("/v1/search", json={"query": "源内"}, headers={"X-API-Key": USER}).status_code == 200
