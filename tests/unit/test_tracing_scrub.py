"""A span's URL attributes keep no query string and no long number a client typed into a path
(found by a review pass: a personal number in a path left in the span)."""

from complaintcore.infra.tracing import scrubbed_attributes

NUMBER = "110101199003070011"


def test_a_personal_number_in_a_path_is_not_kept_in_a_span() -> None:
    attributes = {
        "url.path": f"/v1/complainants/{NUMBER}",
        "http.target": f"/v1/complaints/{NUMBER}?purpose=x",
        "http.url": f"http://127.0.0.1:8000/v1/complaints/13812345678/x#{NUMBER}",
        "http.route": "/v1/complaints/{case_id}",
    }
    assert scrubbed_attributes(attributes) == {
        "url.path": "/v1/complainants/[number]",
        "http.target": "/v1/complaints/[number]",
        "http.url": "http://127.0.0.1:8000/v1/complaints/[number]/x",
        "http.route": "/v1/complaints/{case_id}",
    }
