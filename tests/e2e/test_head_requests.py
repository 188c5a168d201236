"""HEAD is answered wherever GET is, with GET's headers and no body (RFC 9110 9.1, 9.3.2): a
balancer's HEAD probe or `curl -I` got 405 (found by a review pass). Over a real socket, as
uvicorn frames the answer."""

from api_support import receive
from testsupport import LiveService


def test_head_is_answered_as_get_without_the_body(live: LiveService) -> None:
    anonymous, staff = live.client(), live.client("staff_a")
    case = receive(staff)
    for client, path in ((anonymous, "/healthz"), (staff, f"/v1/complaints/{case['id']}")):
        got, head = client.get(path), client.head(path)
        assert (head.status_code, head.content) == (got.status_code, b""), path
        assert head.headers["content-length"] == got.headers["content-length"]
        assert head.headers.get("etag") == got.headers.get("etag")


def test_head_of_a_route_that_takes_no_get_is_405_naming_what_it_takes(
    live: LiveService,
) -> None:
    staff = live.client("staff_a")
    case = receive(staff)
    refused = staff.head(f"/v1/complaints/{case['id']}/assign")
    assert refused.status_code == 405 and refused.headers["allow"] == "POST"
