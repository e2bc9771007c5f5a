"""Issue 11: hostile search input is a 400 naming the limit, never a 500, on every search.

The limits are in the README's Limits table: 200 clauses, 16 levels of parentheses/NOT,
64 KiB of filter text, 1000 IN-list items, 20 order_by entries. At the limits, searches run.
"""

import pytest

from conftest import unique_name

pytestmark = pytest.mark.cairn_only

THOUSAND_CLAUSES = " AND ".join(["metrics.m > 0"] * 1000)
NINETEEN_NOTS = "NOT " * 19 + "metrics.m > 0"
ORDER_BY_2000 = ["start_time DESC"] * 2000


def assert_limit_error(resp, limit_text):
    status, body = resp
    assert status == 400, body
    assert isinstance(body, dict) and body.get("error_code") == "INVALID_PARAMETER_VALUE", body
    assert limit_text in body["message"], body


@pytest.fixture
def experiment_id(client):
    exp = client.create_experiment(unique_name("limits"))
    run = client.create_run(exp)
    client.log_metric(run.info.run_id, "m", 1.0)
    client.log_param(run.info.run_id, "p", "x")
    return exp


def test_run_search_refuses_over_limit_filters_and_order_by(rest, experiment_id):
    base = {"experiment_ids": [experiment_id]}
    assert_limit_error(rest("POST", "runs/search", json={**base, "filter": THOUSAND_CLAUSES}), "200")
    assert_limit_error(rest("POST", "runs/search", json={**base, "filter": NINETEEN_NOTS}), "16")
    assert_limit_error(rest("POST", "runs/search", json={**base, "order_by": ORDER_BY_2000}), "20")
    # Nothing changed, and the server still answers the same search at the limits.
    status, body = rest("POST", "runs/search", json={**base, "filter": " OR ".join(["metrics.m > 0"] * 200)})
    assert status == 200 and len(body["runs"]) == 1, body


def test_searches_at_the_limits_run(rest, experiment_id):
    base = {"experiment_ids": [experiment_id]}
    nested = "NOT (" * 8 + "metrics.m > 0" + ")" * 8  # 16 levels
    status, body = rest("POST", "runs/search", json={**base, "filter": nested})
    assert status == 200 and len(body.get("runs", [])) == 1, body  # eight NOTs cancel out
    mixed = " AND ".join(f"(metrics.m > {i} OR params.p = 'x' OR tags.t LIKE '%{i}%' OR attributes.status != 'X')" for i in range(-25, 25))
    order = [f"metrics.k{i} DESC" for i in range(7)] + [f"params.p{i}" for i in range(7)] + [f"tags.t{i} ASC" for i in range(6)]
    status, body = rest("POST", "runs/search", json={**base, "filter": mixed, "order_by": order})
    assert status == 200 and len(body["runs"]) == 1, body
    status, body = rest("POST", "runs/search", json={**base, "filter": "run_id IN (" + ", ".join(f"'{i}'" for i in range(1000)) + ")"})
    assert status == 200, body


@pytest.mark.parametrize(
    "method,path,payload",
    [
        ("POST", "experiments/search", {"filter": " AND ".join(["name LIKE '%a%'"] * 1000)}),
        ("POST", "experiments/search", {"order_by": ["name"] * 2000}),
        ("GET", "registered-models/search", {"filter": " AND ".join(["name LIKE '%a%'"] * 1000)}),
        ("GET", "registered-models/search", {"filter": NINETEEN_NOTS.replace("metrics.m > 0", "name = 'a'")}),
        ("GET", "model-versions/search", {"filter": " AND ".join(["name = 'a'"] * 1000)}),
    ],
)
def test_other_searches_refuse_over_limit_input(rest, method, path, payload):
    if method == "GET":
        status, body = rest("GET", path, params=payload)
    else:
        status, body = rest("POST", path, json=payload)
    assert status == 400, body
    assert body.get("error_code") == "INVALID_PARAMETER_VALUE", body


def test_logged_model_search_refuses_over_limit_input(rest, experiment_id):
    assert_limit_error(
        rest("POST", "logged-models/search", json={"experiment_ids": [experiment_id], "filter": THOUSAND_CLAUSES}), "200"
    )
    too_many = [{"field_name": "creation_timestamp", "ascending": False}] * 2000
    assert_limit_error(rest("POST", "logged-models/search", json={"experiment_ids": [experiment_id], "order_by": too_many}), "20")


def test_cairn_runs_table_refuses_over_limit_input(rest, experiment_id):
    status, body = rest("GET", "/api/cairn/v1/runs/table", params={"experiment_ids": experiment_id, "filter": THOUSAND_CLAUSES})
    assert status == 400 and body.get("error_code") == "INVALID_PARAMETER_VALUE", body
    status, body = rest("GET", "/api/cairn/v1/runs/table", params={"experiment_ids": experiment_id, "filter": NINETEEN_NOTS})
    assert status == 400 and body.get("error_code") == "INVALID_PARAMETER_VALUE", body
