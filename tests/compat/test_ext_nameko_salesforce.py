"""nameko-salesforce 1.2.0, unchanged, on shimeji (pip install --no-deps).

Its API client (`get_client`) proxies ``simple_salesforce.Salesforce``
clients checked out of a pool; a call that meets an expired session
discards that client and is retried on a new one by
``nameko.utils.retry.retry(max_attempts=None, for_exceptions=...)``, which
waits ``delay`` (1 s) between attempts. Its tests replace that wait with
``patch("nameko.utils.retry.sleep")``: the retry must call the module's
``sleep`` name at call time, as nameko's ``from time import sleep`` does.

The Salesforce HTTP API is not ours to serve: the pool's ``create`` hands
out stand-in clients, so what runs is the extension's proxy and pool code
over our retry.
"""

from __future__ import annotations

from unittest.mock import call, patch

import pytest
import simple_salesforce
from nameko_salesforce.api.client import ClientPool, get_client

from nameko.utils import retry as retry_module
from tests.compat.ext_support import assert_installed_on_shimeji


class Contacts:
    def __init__(self, client: StandIn) -> None:
        self.client = client

    def get(self, record_id: str) -> dict:
        self.client.calls += 1
        if self.client.expired:
            raise simple_salesforce.SalesforceExpiredSession("url", 401, "Contact", b"expired")
        return {"Id": record_id, "served_by": self.client.number}


class StandIn:
    """A ``Salesforce`` client: the first one made has an expired session."""

    made = 0

    def __init__(self) -> None:
        StandIn.made += 1
        self.number = StandIn.made
        self.expired = self.number == 1
        self.calls = 0
        self.Contact = Contacts(self)


@pytest.fixture
def client():
    StandIn.made = 0
    with patch.object(ClientPool, "create", side_effect=StandIn):
        yield get_client("user", "password", "token", sandbox=True)


def test_installed_unchanged_on_shimeji():
    assert_installed_on_shimeji("nameko-salesforce", "1.2.0")
    assert retry_module.sleep.__module__ == "time"  # the name nameko's module has


def test_an_expired_session_is_retried_on_a_new_client_with_the_sleep_patched(client):
    with patch("nameko.utils.retry.sleep") as sleep:
        assert client.Contact.get("003") == {"Id": "003", "served_by": 2}
    assert sleep.call_args_list == [call(1)]  # one pause, of the default delay
    assert StandIn.made == 2
    assert client.pool.free and not client.pool.busy  # the expired one was discarded


def test_other_errors_are_not_retried(client):
    def broken(_client):
        raise simple_salesforce.SalesforceResourceNotFound("url", 404, "Contact", b"gone")

    proxy = type(client.Contact)("Contact", client.pool, broken)  # the extension's proxy
    with patch("nameko.utils.retry.sleep") as sleep:
        with pytest.raises(simple_salesforce.SalesforceResourceNotFound):
            proxy()
    assert sleep.call_count == 0
