"""Schema-driven fuzzing of the whole API (schemathesis against the OpenAPI schema the controller
serves): whatever is sent, the answer is never a 5xx, except the runtime's documented 503."""

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings

from tests.conftest import unique


def _served_schema():
    """The controller's own OpenAPI schema, generated in-process so operations are known at collection."""
    import django
    from drf_spectacular.generators import SchemaGenerator

    django.setup()
    return schemathesis.openapi.from_dict(SchemaGenerator().get_schema(request=None, public=True))


SCHEMA = _served_schema()
OPERATIONS = {op.label: op for op in (result.ok() for result in SCHEMA.get_all_operations())}


@pytest.fixture(scope="module")
def fuzz_target(live):
    """A user who owns an app with a build, so half the generated requests reach deep code."""
    user = live.register(unique("fuzzer"))
    app = unique("fuzzed")
    assert user.post("/v1/apps", json={"id": app}).status_code == 201
    user.post(f"/v1/apps/{app}/builds", json={"image": "web:1", "procfile": {"web": "serve"}})
    assert requests.get(f"{live.url}/v1/schema/").status_code == 200  # the same schema is served
    return {"url": live.url, "user": user, "app": app, "builder_key": live.builder_key}


@pytest.mark.parametrize("label", sorted(OPERATIONS))
def test_no_server_errors(label, fuzz_target):
    operation = OPERATIONS[label]

    @given(case=operation.as_strategy())
    @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def check(case):
        if "id" in (case.path_parameters or {}) and case.method != "DELETE" and hash(repr(case.body)) % 2:
            case.path_parameters["id"] = fuzz_target["app"]
        headers = {"Authorization": f"token {fuzz_target['user'].token}",
                   "X-Deis-Builder-Auth": fuzz_target["builder_key"]}
        response = case.call(base_url=fuzz_target["url"], headers=headers)
        where = (case.method, case.formatted_path, case.body, response.text[:300])
        if response.status_code == 503:
            assert "runtime" in response.text, where
        else:
            assert response.status_code < 500, where
        if response.status_code >= 400 and response.status_code != 405:
            assert response.headers.get("content-type", [""])[0].startswith("application/json"), where

    check()
