"""The Procfile parser: what a push may declare, and a bad line named so the pusher can fix it."""

from __future__ import annotations

import pytest

from deis.builder import BuildError
from deis.builder.procfile import ProcfileError, parse, read


def test_types_and_commands():
    text = ("web: gunicorn app:app --bind 0.0.0.0:$PORT\n"
            "worker:python3 worker.py  \n"
            "  clock :  bash -c 'while true; do date; sleep 60; done'\n"
            "release: python3 manage.py migrate # a comment the shell drops\n"
            "my_type-2: echo http://example.com:80/x\n")
    assert parse(text) == {
        "web": "gunicorn app:app --bind 0.0.0.0:$PORT",
        "worker": "python3 worker.py",
        "clock": "bash -c 'while true; do date; sleep 60; done'",
        "release": "python3 manage.py migrate # a comment the shell drops",
        "my_type-2": "echo http://example.com:80/x",
    }


def test_blank_lines_and_comments_are_ignored():
    text = "\n# the web process\n   \n  # indented comment\nweb: ./run\r\n\n"
    assert parse(text) == {"web": "./run"}
    assert parse("") == {}
    assert parse("# only a comment\n") == {}


def test_duplicate_type_names_both_lines():
    with pytest.raises(ProcfileError) as caught:
        parse("web: one\nworker: two\nweb: three\n")
    message = str(caught.value)
    assert "line 3" in message and "'web'" in message and "line 1" in message
    assert "web: three" in message


def test_conflict_marker_is_named_with_its_line():
    text = "web: gunicorn app:app\n<<<<<<< HEAD\nworker: a\n=======\nworker: b\n>>>>>>> topic\n"
    with pytest.raises(ProcfileError) as caught:
        parse(text)
    assert "line 2" in str(caught.value)
    assert "<<<<<<< HEAD" in str(caught.value)


@pytest.mark.parametrize("line", ["web gunicorn", "we b: cmd", "web.1: cmd", "web:", "web:   ",
                                  ": cmd", "=======", "wéb: cmd"])
def test_lines_that_are_not_type_colon_command(line):
    with pytest.raises(ProcfileError) as caught:
        parse(f"worker: ok\n{line}\n")
    assert "line 2" in str(caught.value)


def test_procfile_error_is_a_build_error():
    assert issubclass(ProcfileError, BuildError)


def test_read_from_a_tree(tmp_path):
    assert read(tmp_path) is None
    (tmp_path / "Procfile").write_text("web: ./serve\n")
    assert read(tmp_path) == {"web": "./serve"}


def test_read_refuses_a_symlink_out_of_the_tree(tmp_path):
    outside = tmp_path / "secret"
    outside.write_text("web: secret\n")
    app = tmp_path / "app"
    app.mkdir()
    (app / "Procfile").symlink_to(outside)
    with pytest.raises(BuildError, match="symlink"):
        read(app)
