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
    import deis.controller.api.schema  # noqa: F401  (the builder key's scheme)

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


# --- bodies no parser may turn into a 5xx: nesting, invalid Unicode, NUL (issue 11) -------------

import json  # noqa: E402
import re  # noqa: E402

from hypothesis import strategies as st  # noqa: E402

PATH_VALUES = {"type": "web", "num": "1", "uuid": "00000000-0000-4000-8000-000000000000", "version": "1",
               "username": "nobody-here", "domain": "x.example.com", "common_name": "x.example.com",
               "key_id": "no-such-key", "fingerprint": "00:11"}


def _path(template: str, method: str, app: str) -> str:
    # A DELETE goes to an app that does not exist: the fuzzed app (and user) must survive the run.
    values = {**PATH_VALUES, "id": app if method != "DELETE" else "no-such-app"}
    return re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], template)


BODY_OPERATIONS = sorted((op.method.upper(), op.path) for op in OPERATIONS.values())
NASTY = {
    "nested 33": '{"a": ' * 33 + "1" + "}" * 33,
    "nested 100000": "[" * 100000 + "]" * 100000,
    "lone surrogate value": '{"values": {"A": "\\ud800"}, "id": "x\\udfff", "image": "\\udbff", "username": "\\udc00"}',
    "lone surrogate key": '{"\\ud800": "x"}',
    "NUL": '{"values": {"A": "a\\u0000"}, "id": "a\\u0000", "procfile": {"web": "\\u0000"}, "domain": "\\u0000"}',
    "double-encoded surrogate": json.dumps({"values": json.dumps({"A": "\ud800"}), "memory": json.dumps({"\udfff": 1})}),
    "double-encoded nesting": json.dumps({"values": "[" * 5000 + "]" * 5000, "procfile": "{" * 3000}),
}


def _call(target, method: str, path: str, body, content_type: str = "application/json"):
    headers = {"Authorization": f"token {target['user'].token}", "X-Deis-Builder-Auth": target["builder_key"],
               "Content-Type": content_type}
    return requests.request(method, target["url"] + path, data=body, headers=headers, timeout=30)


def _assert_no_server_error(response, where):
    if response.status_code == 503:
        assert "runtime" in response.text, where
    else:
        assert response.status_code < 500, where
    assert 200 > response.status_code or response.status_code >= 300 or response.request.method == "GET", where


@pytest.mark.parametrize("method, template", BODY_OPERATIONS)
def test_nasty_bodies_are_never_a_server_error(method, template, fuzz_target):
    path = _path(template, method, fuzz_target["app"])
    for name, body in NASTY.items():
        response = _call(fuzz_target, method, path, body.encode())
        _assert_no_server_error(response, (method, path, name, response.text[:300]))
    for body in (b'{"id": "\xff\xfe"}', b'{"values": {"A": "\xed\xa0\x80"}}'):  # not UTF-8 (CESU surrogate)
        response = _call(fuzz_target, method, path, body)
        _assert_no_server_error(response, (method, path, body, response.text[:300]))
    form = "values=" + requests.utils.quote(json.dumps({"A": "\ud800"})) + "&id=a%00&procfile=" + "%5B" * 3000
    response = _call(fuzz_target, method, path, form, "application/x-www-form-urlencoded")
    _assert_no_server_error(response, (method, path, "form", response.text[:300]))


_leaf = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8)
_tree = st.recursive(_leaf, lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=6), kids,
                                                                                        max_size=3), max_leaves=12)
_nasty_text = (st.text(st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1, max_size=3)
               | st.text(max_size=4).map(lambda t: t + "\x00"))
FIELDS = ["values", "memory", "cpu", "tags", "id", "image", "procfile", "domain", "username", "command", "web",
          "public", "receive_user", "receive_repo", "owner", "version", "certificate"]


@st.composite
def nasty_json(draw):
    """Any JSON, with a lone surrogate or NUL somewhere (a key, a value, or inside a JSON string the
    v1 client double-encodes), or nested past the limit."""
    tree, text = draw(_tree), draw(_nasty_text)
    field = draw(st.sampled_from(FIELDS))
    body = draw(st.sampled_from([
        {field: tree, text: 1}, {field: text, "x": tree}, {field: {"A": text}}, {field: json.dumps({"A": text})},
        {field: json.dumps({text: tree})}]))
    for _ in range(draw(st.sampled_from([0, 0, 0, 33, 500]))):
        body = [body] if draw(st.booleans()) else {field: body}
    return json.dumps(body)  # ensure_ascii: lone surrogates and NUL travel as \u escapes, as an attacker sends them


@pytest.mark.parametrize("method, template", [(m, t) for m, t in BODY_OPERATIONS if m != "GET"])
def test_generated_nasty_bodies_are_never_a_server_error(method, template, fuzz_target):
    path = _path(template, method, fuzz_target["app"])

    @given(body=nasty_json())
    @settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def check(body):
        response = _call(fuzz_target, method, path, body.encode())
        _assert_no_server_error(response, (method, path, body[:200], response.text[:300]))

    check()
