"""Webhook URL rules, signatures and back-off, without a network or a database."""

import hashlib
import hmac
import ipaddress

import pytest

from complaintcore.webhooks.dispatcher import RetryPolicy
from complaintcore.webhooks.signing import Secret, new_secret, signature_header
from complaintcore.webhooks.urls import AllowList, UrlNotAllowed, _is_global, check_url, parse_url


def resolver(table: dict[str, list[str]]):
    async def resolve(host: str, port: int) -> list[str]:
        if host not in table:
            raise OSError("no such host")
        return table[host]

    return resolve


PUBLIC = resolver({"hooks.example.com": ["93.184.216.34"], "inside.example.com": ["10.0.0.8"]})


async def test_https_to_a_public_host_is_allowed_and_pinned_to_the_checked_address() -> None:
    target = await check_url("https://hooks.example.com/x?a=1", AllowList.parse(""), PUBLIC)
    assert target.address == "93.184.216.34"
    assert target.pinned_url == "https://93.184.216.34/x?a=1"
    assert target.host == "hooks.example.com"


@pytest.mark.parametrize(
    "url",
    [
        "https://inside.example.com/x",  # resolves to a private address
        "https://nowhere.example.com/x",  # does not resolve
        "http://hooks.example.com/x",  # http to a host not allowed
        "https://127.0.0.1/x",
        "https://[::ffff:127.0.0.1]/x",
        "https://224.0.0.1/x",
        "https://240.0.0.1/x",
        "https://192.0.2.1/x",  # documentation range: not global
        "https://hooks.example.com:0/x",  # no port: it was sent to 443 (a review pass)
    ],
)
async def test_refused(url: str) -> None:
    with pytest.raises(UrlNotAllowed):
        await check_url(url, AllowList.parse(""), PUBLIC)


async def test_the_allow_list_names_hosts_addresses_and_networks() -> None:
    allow = AllowList.parse(" 127.0.0.1 , Hooks.Internal, 10.0.0.0/8 ")
    table = resolver({"hooks.internal": ["10.0.0.8"], "rebound.internal": ["169.254.169.254"]})
    assert (await check_url("http://127.0.0.1:8080/x", allow, table)).address == "127.0.0.1"
    assert (await check_url("http://127.0.0.1:8080/x", allow, table)).pinned_url == (
        "http://127.0.0.1:8080/x"
    )
    with pytest.raises(UrlNotAllowed):  # sent to port 80 until a review pass
        await check_url("http://127.0.0.1:0/x", allow, table)
    assert (await check_url("http://hooks.internal/x", allow, table)).address == "10.0.0.8"
    with pytest.raises(UrlNotAllowed):  # a listed name does not waive the address check
        await check_url("http://rebound.internal/x", AllowList.parse("rebound.internal"), table)
    with pytest.raises(UrlNotAllowed):  # a public address is not an allowed http host
        await check_url("http://93.184.216.34/x", allow, table)


def test_the_signature_is_the_hmac_of_the_timestamp_and_raw_body() -> None:
    secret = Secret("whsec_test")
    body = b'{"a":1}'
    header = signature_header(secret, 1_700_000_000, body)
    expected = hmac.new(b"whsec_test", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert header == f"t=1700000000,v1={expected}"
    assert "whsec" not in repr(new_secret())


def test_back_off_doubles_is_capped_and_jittered() -> None:
    policy = RetryPolicy(base_s=10, cap_s=3600, window_s=86400)
    assert [policy.delay_after(n, lambda: 1.0) for n in (1, 2, 3)] == [10, 20, 40]
    assert policy.delay_after(1, lambda: 0.0) == 5
    assert policy.delay_after(30, lambda: 1.0) == 3600


@pytest.mark.parametrize(
    "address",
    ["fec0::1", "2002:a00:1::1", "::ffff:10.0.0.1", "10.0.0.1", "169.254.0.1", "::1"],
)
def test_a_non_global_address_however_written_is_refused(address: str) -> None:
    """Site-local IPv6 and a 6to4 address carrying a private IPv4 one are not global."""
    assert not _is_global(ipaddress.ip_address(address))


def test_a_url_the_http_client_would_refuse_is_refused_up_front() -> None:
    with pytest.raises(UrlNotAllowed):
        parse_url("https://\u2603.net/hooks")
