"""A span's URL attributes keep no query string and no long number a client typed into a path
(found by a review pass: a personal number in a path left in the span)."""

from complaintcore.api.tracing import scrubbed_attributes

NUMBER = "110101199003070011"


def test_a_personal_number_in_a_path_is_not_kept_in_a_span() -> None:
    attributes = {
        "url.path": f"/v1/complainants/{NUMBER}",
        "http.target": f"/v1/complaints/{NUMBER}?purpose=x",
        "http.url": f"http://127.0.0.1:8000/v1/complaints/13812345678/x#{NUMBER}",
        "http.route": "/v1/complaints/{case_id}",
    }
    assert scrubbed_attributes(attributes) == {
        "url.path": "/v1/complainants/[personal number]",
        "http.target": "/v1/complaints/[personal number]",
        "http.url": "http://127.0.0.1:8000/v1/complaints/[personal number]/x",
        "http.route": "/v1/complaints/{case_id}",
    }


def test_a_long_number_that_is_no_personal_number_is_not_kept_either() -> None:
    """A bank card number (16 to 19 digits) is none of the identity or mobile shapes: the long
    run rule still takes it out of a path."""
    assert scrubbed_attributes({"url.path": "/v1/complaints/6222021234567890123"}) == {
        "url.path": "/v1/complaints/[number]"
    }


def test_numbers_typed_in_groups_and_in_the_user_agent_are_not_kept() -> None:
    attributes = {
        "url.path": "/v1/complaints/138-0013-8000",
        "http.user_agent": "BankApp/2.1 (13800138000)",
        "user_agent.original": "BankApp/2.1 (138 0013 8000)",
    }
    assert scrubbed_attributes(attributes) == {
        "url.path": "/v1/complaints/[personal number]",
        "http.user_agent": "BankApp/2.1 ([personal number])",
        "user_agent.original": "BankApp/2.1 ([personal number])",
    }
