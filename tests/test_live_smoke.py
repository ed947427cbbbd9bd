def test_live_controller_answers_401_on_v1_root(live):
    import requests
    answer = requests.get(live.url + "/v1/")
    assert answer.status_code == 401
    assert answer.headers["DEIS_API_VERSION"] == "1.5"


def test_the_admin_fixture_is_an_admin(admin):
    me = admin.get("/v1/users/")
    assert me.status_code == 200
    assert any(u["username"] == "admin" and u["is_superuser"] for u in me.json()["results"])
