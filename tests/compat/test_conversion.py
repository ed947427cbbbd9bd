"""The conversion of the v1 client stays mechanical, minimal and recorded."""

import py_compile
import warnings

from . import convert


def test_each_substitution_matches_exactly_once_and_the_record_is_in_sync(tmp_path):
    conversion = convert.convert()  # raises ConversionError unless every substitution matched once
    assert conversion.counts == [1] * len(convert.SUBSTITUTIONS)
    for sub in convert.SUBSTITUTIONS:
        assert sub.old != sub.new and sub.reason
        assert conversion.after_2to3.count(sub.old) == 1, sub.reason
        assert sub.new in conversion.converted, sub.reason
    recorded = convert.CONVERSION_MD.read_text(encoding="utf-8")
    assert recorded == conversion.markdown(), (
        "tests/compat/CONVERSION.md is out of date: run `python -m tests.compat.convert --write`")
    path, _ = convert.write_client(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # deis.py's own '\S' in a non-raw regex
        py_compile.compile(str(path), doraise=True)


def test_substitutions_refuse_text_they_do_not_match_once():
    sub = convert.SUBSTITUTIONS[0]
    for text in ("", sub.old + sub.old):
        try:
            convert.apply_substitutions(text)
        except convert.ConversionError:
            pass
        else:
            raise AssertionError(f"apply_substitutions accepted a text with {text.count(sub.old)} matches")


def test_2to3_did_the_python_2_idioms_it_can():
    after = convert.convert().after_2to3
    for py2 in ("import urlparse", "raw_input(", "basestring", "sys.maxint", ".next()", "0700)"):
        assert py2 not in after, py2
    for py3 in ("import urllib.parse", "input('username: ')", "sys.maxsize", "next(self.frames)", "0o700)"):
        assert py3 in after, py3
