"""Concurrent changes to one app, with real threads against the real server: consecutive release
numbers, and no config key lost."""

from concurrent.futures import ThreadPoolExecutor

from tests.conftest import unique


def test_concurrent_config_changes_and_builds_keep_every_key_and_number(live):
    user = live.register(unique("racer"))
    app = unique("race")
    assert user.post("/v1/apps", json={"id": app}).status_code == 201

    def set_key(n):
        if n % 5 == 0:
            answer = user.post(f"/v1/apps/{app}/builds", json={"image": f"web:{n}"})
        else:
            answer = user.post(f"/v1/apps/{app}/config", json={"values": {f"KEY_{n}": str(n)}})
        return answer.status_code, answer.headers.get("Deis-Release")

    changes = 40
    with ThreadPoolExecutor(max_workers=10) as pool:
        results = list(pool.map(set_key, range(changes)))

    assert all(status == 201 for status, _ in results), results
    numbers = sorted(int(release) for _, release in results)
    assert numbers == list(range(2, changes + 2))  # v1 is the app's creation
    releases = user.get(f"/v1/apps/{app}/releases").json()
    assert [r["version"] for r in releases["results"]] == list(range(changes + 1, 0, -1))
    values = user.get(f"/v1/apps/{app}/config").json()["values"]
    assert values == {f"KEY_{n}": str(n) for n in range(changes) if n % 5}
