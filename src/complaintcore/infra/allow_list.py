"""The items of `COMPLAINTCORE_WEBHOOK_ALLOW_HOSTS`, read one way by the setting's check and by
the webhooks' allow list (`webhooks.urls.AllowList`)."""

import ipaddress
import re

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# dot-separated labels of letters, digits, '-' and '_' (a container's service name has one)
_HOST_NAME = re.compile(
    r"[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?)*"
)


def allow_list_item(raw: str) -> IPNetwork | str | None:
    """An IP network (an address is one of a single address), or a host name in lower case
    without its final dot; None for an empty item. `ValueError` for anything else, which could
    never match a URL's host: a port, a path, a wildcard, an empty label, a bad network."""
    item = raw.strip().lower()
    if not item:
        return None
    try:
        return ipaddress.ip_network(item.strip("[]"), strict=False)
    except ValueError:
        pass
    name = item.removesuffix(".")
    if len(name) > 253 or not _HOST_NAME.fullmatch(name):
        raise ValueError("each item must be a host name, an IP address or a network (CIDR)")
    return name
