"""What makes a PostgreSQL URL (`DATABASE_URL`, a read replica's, `--read-from`) one the driver
can be handed: read one way by the settings' check and the command line's."""

import re
from urllib.parse import urlsplit

POSTGRES_URL_PATTERN = r"^postgres[a-z0-9+]*://"


def check_postgres_url(url: str) -> str:
    """`url`, or `ValueError` saying what is wrong: not a postgresql:// URL, or a host whose port
    is no number from 1 to 65535 or whose IPv6 address lacks its closing bracket. Each host of
    a multi-host URL (`host1:5432,host2:5433`, as libpq reads it) is checked; the rest is the
    driver's to read. (Such a port reached the driver as a traceback: found by a review
    pass.) The message never repeats the URL, which may hold a password."""
    if not re.match(POSTGRES_URL_PATTERN, url):
        raise ValueError("must be a postgresql:// URL")
    authority = re.split(r"[/?#]", url.split("://", 1)[1], maxsplit=1)[0]
    hosts = authority.rpartition("@")[2].split(",")
    if len(hosts) > 1 and not any(hosts):
        # `postgresql://,/db` names no host at all (one empty host is libpq's default socket):
        # it reached the driver as a traceback (found by a review pass)
        raise ValueError("must name a host")
    for host in hosts:
        try:
            port = urlsplit(f"//{host}").port
        except ValueError:
            raise ValueError(
                "each host must be a name or address with an optional port from 1 to 65535"
                " (an IPv6 address in brackets)"
            ) from None
        if port == 0:
            raise ValueError("a port must be from 1 to 65535")
    return url
