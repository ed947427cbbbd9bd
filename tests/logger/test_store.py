"""The log store: newest lines by tail, trimmed to its size, safe for writers in several processes."""

import multiprocessing

import pytest

from deis.logger import LogStore, format_line, platform_line


def test_tail_returns_the_newest_lines_in_order(tmp_path):
    store = LogStore(tmp_path)
    assert store.tail("app", 10) == []
    store.append("app", [format_line("app", "web.1", f"line {i}") for i in range(300)])
    tail = store.tail("app", 3)
    assert [line.split(": ", 1)[1] for line in tail] == ["line 297", "line 298", "line 299"]
    assert " app[web.1]: " in tail[0]
    assert len(store.tail("app", 1000)) == 300


def test_lines_with_newlines_stay_one_line_and_platform_lines_are_tagged(tmp_path):
    store = LogStore(tmp_path)
    store.append("app", ["a\nb", platform_line("scaled web=2")])
    first, second = store.tail("app", 2)
    assert first == "a b" and " deis[api]: scaled web=2" in second


def test_the_file_is_trimmed_to_its_newest_half(tmp_path):
    store = LogStore(tmp_path, max_bytes=10_000)
    for i in range(1000):
        store.append("app", [f"line {i:04d} " + "x" * 40])
    size = store.path("app").stat().st_size
    assert size <= 10_000
    lines = store.tail("app", 10_000)
    assert lines[-1].startswith("line 0999") and all(len(line) == 50 for line in lines)
    numbers = [int(line.split()[1]) for line in lines]
    assert numbers == list(range(numbers[0], 1000))  # contiguous: nothing lost inside the window


def _write(root, who):
    store = LogStore(root, max_bytes=2_000)  # trims often while the others write
    for i in range(300):
        store.append("app", [f"{who} {i:04d}"])


def test_writers_in_several_processes_lose_no_line_of_the_window(tmp_path):
    procs = [multiprocessing.Process(target=_write, args=(tmp_path, w)) for w in ("a", "b", "c")]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    lines = LogStore(tmp_path).tail("app", 100_000)
    assert all(len(line) == 6 for line in lines)  # no torn or interleaved lines
    assert len(lines) > 100
    for who in "abc":  # each writer's newest lines, none missing (an early finisher may be trimmed away)
        mine = [int(line.split()[1]) for line in lines if line.startswith(who)]
        assert mine == (list(range(mine[0], 300)) if mine else [])


def test_app_names_are_checked_and_remove_forgets(tmp_path):
    store = LogStore(tmp_path)
    with pytest.raises(ValueError):
        store.append("../etc", ["x"])
    store.append("app", ["x"])
    store.remove("app")
    assert store.tail("app", 5) == []


# ---- destroy: the log goes, and late lines of the destroyed app's processes never bring it back ----

def test_remove_leaves_a_tombstone_that_drops_lines_of_older_processes(tmp_path):
    store = LogStore(tmp_path)
    store.append("app", ["old incarnation"], born=100.0)
    store.remove("app", when=200.0)
    assert not store.path("app").exists() and store.destroyed_at("app") == 200.0
    store.append("app", ["late output of a destroyed container"], born=150.0)
    store.append("app", ["started at the destruction"], born=200.0)
    assert not store.path("app").exists()  # not even an empty file
    assert store.tail("app", 10) == []
    store.append("app", ["a new app of the same name"], born=250.0)
    store.append("app", [platform_line("v1 deployed")])  # the controller's own lines
    lines = store.tail("app", 10)
    assert lines[0] == "a new app of the same name" and "deis[api]: v1 deployed" in lines[1]
    assert len(lines) == 2


def test_the_collector_keys_lines_by_their_container_creation(tmp_path):
    from deis.logger.collector import Collector

    class API:
        known = {"old": {"Created": "2024-01-01T00:00:00.5Z"}, "new": {"Created": "2024-01-01T00:10:00.000000001Z"}}

        def inspect_container(self, container_id):
            import docker.errors

            if container_id not in self.known:
                raise docker.errors.NotFound("gone")
            return self.known[container_id]

    class Client:
        api = API()

    store = LogStore(tmp_path / "apps")
    collector = Collector(store, client=Client())
    stamp = "2024-01-01T00:05:00.000000000Z"
    collector._keep("old", "app", "web.1", [f"{stamp} before".encode()])
    assert len(store.tail("app", 10)) == 1
    from deis.logger.collector import _since
    store.remove("app", when=_since("2024-01-01T00:05:00"))  # deis destroy
    collector._keep("old", "app", "web.1", ["2024-01-01T00:05:01.000000000Z late".encode()])
    collector._keep("gone", "app", "web.1", ["2024-01-01T00:05:02.000000000Z unknown".encode()])
    collector.on_event({"Action": "die", "Actor": {"ID": "old", "Attributes": {
        "deis.app": "app", "deis.type": "web", "deis.num": "1", "exitCode": "1"}}})
    assert not store.path("app").exists()
    collector._keep("new", "app", "web.1", ["2024-01-01T00:10:01.000000000Z new app".encode()])
    assert [line.split(": ", 1)[1] for line in store.tail("app", 10)] == ["new app"]
