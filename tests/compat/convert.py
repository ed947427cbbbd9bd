"""Turn the original Deis v1.9.1 command-line client (Python 2) into a runnable Python 3 file.

The conversion is mechanical so that the client under test keeps its behaviour:

1. the source is the `deis==1.9.1` sdist from PyPI, fetched with `pip download` and cached;
   its `deis.py` must match a pinned SHA-256;
2. 2to3 (the standard library's lib2to3; its fork `fissix` where lib2to3 is gone, Python >= 3.13)
   runs with all its default fixers;
3. a short, explicit list of textual substitutions fixes what 2to3 cannot (bytes from
   subprocess, the `file()` builtin, PyYAML 6's `load`, ...). Each must match exactly once.

`CONVERSION.md` beside this file records every change (the 2to3 diff and the substitutions);
a test checks it is in sync. Regenerate it with `python -m tests.compat.convert --write`.
"""

from __future__ import annotations

import difflib
import hashlib
import io
import os
import subprocess
import sys
import tarfile
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

VERSION = "1.9.1"
REQUIREMENT = f"deis=={VERSION}"
# SHA-256 of deis.py inside the deis-1.9.1 sdist on PyPI: the client under test is exactly that file.
DEIS_PY_SHA256 = "b94445824d14c2612fa20ef2d91a2cc905f42e8755175f88e78d7e5354c8d051"

HERE = Path(__file__).resolve().parent
CONVERSION_MD = HERE / "CONVERSION.md"


def cache_dir() -> Path:
    return Path(os.environ.get("DEIS_COMPAT_CACHE", Path.home() / ".cache" / "deis-compat"))


@dataclass(frozen=True)
class Substitution:
    reason: str
    old: str
    new: str


# What 2to3 leaves broken, each replaced textually in the 2to3 output. Keep this list short:
# every entry is a behaviour-preserving port of one Python 2 (or old-library) idiom.
SUBSTITUTIONS: list[Substitution] = [
    Substitution(
        "Session.git_root: subprocess.check_output returns bytes on Python 3, and bytes.strip('\\n') "
        "raises TypeError; decode to str as Python 2's str was.",
        "stderr=subprocess.PIPE).strip('\\n')",
        "stderr=subprocess.PIPE).decode().strip('\\n')",
    ),
    Substitution(
        "Session._get_name_from_git_remote: `git remote -v` output is bytes on Python 3 and re.search "
        "with a str pattern on bytes raises TypeError; decode it.",
        "remotes = subprocess.check_output(['git', 'remote', '-v'],\n"
        "                                          cwd=git_root)",
        "remotes = subprocess.check_output(['git', 'remote', '-v'],\n"
        "                                          cwd=git_root).decode()",
    ),
    Substitution(
        "encode(): on Python 2 it turned unicode into a UTF-8 str for printing; on Python 3 that gives "
        "bytes, which print as b'...' and fail with width formats ('{k:<9}') in config:list. "
        "Python 3 text is already what sys.stdout takes, so return it unchanged.",
        "        return obj.encode('utf-8')",
        "        return obj",
    ),
    Substitution(
        "DeisClient._certs_add: the Python 2 builtin file() does not exist on Python 3 (2to3 has no fixer "
        "for it); open() is the same call.",
        "body = {'certificate': file(cert).read().strip(), 'key': file(key).read().strip()}",
        "body = {'certificate': open(cert).read().strip(), 'key': open(key).read().strip()}",
    ),
    Substitution(
        "DeisClient.check_connection: exceptions have no .message attribute on Python 3 "
        "(BaseException.message was removed); str(err) is its text.",
        "str(err.message)",
        "str(err)",
    ),
    Substitution(
        "DeisClient.auth_register: response.content is bytes on Python 3 and str + bytes raises "
        "TypeError; response.text is the decoded body (what Python 2's str concatenation printed).",
        "'Registration failed: ' + response.content",
        "'Registration failed: ' + response.text",
    ),
    Substitution(
        "DeisClient.config_set (SSH_KEY): base64.b64encode takes and returns bytes on Python 3; encode the "
        "key text and decode the result so the JSON body holds a string as on Python 2.",
        "values['SSH_KEY'] = b64encode(ssh_key)",
        "values['SSH_KEY'] = b64encode(ssh_key.encode()).decode()",
    ),
    Substitution(
        "DeisClient.builds_create (--procfile): PyYAML >= 6 requires a Loader for yaml.load (the 2015 "
        "PyYAML 3.11 defaulted to the full loader); a Procfile is plain YAML, so safe_load parses it the same.",
        "body['procfile'] = yaml.load(procfile)",
        "body['procfile'] = yaml.safe_load(procfile)",
    ),
    Substitution(
        "DeisClient.builds_create (./Procfile): same PyYAML >= 6 change as above.",
        "body['procfile'] = yaml.load(open('Procfile'))",
        "body['procfile'] = yaml.safe_load(open('Procfile'))",
    ),
]


class ConversionError(Exception):
    pass


def fetch_sdist() -> Path:
    """The deis==1.9.1 sdist, downloaded once with pip into the cache folder."""
    folder = cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    found = sorted(folder.glob(f"deis-{VERSION}.*"))
    if not found:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
                        "-q", REQUIREMENT, "-d", str(folder)], check=True, timeout=300)
        found = sorted(folder.glob(f"deis-{VERSION}.*"))
    if not found:
        raise ConversionError(f"pip download {REQUIREMENT} left no sdist in {folder}")
    return found[0]


def original_source() -> str:
    """deis.py from the sdist, checked against the pinned hash."""
    sdist = fetch_sdist()
    member = f"deis-{VERSION}/deis.py"
    if sdist.suffix == ".zip":
        with zipfile.ZipFile(sdist) as archive:
            data = archive.read(member)
    else:
        with tarfile.open(sdist) as archive:
            data = archive.extractfile(member).read()
    digest = hashlib.sha256(data).hexdigest()
    if digest != DEIS_PY_SHA256:
        raise ConversionError(f"{sdist}: deis.py has SHA-256 {digest}, expected {DEIS_PY_SHA256}")
    return data.decode("utf-8")


def _refactor_module():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # lib2to3 is deprecated (PEP 594) but present in 3.11 and 3.12
        try:
            from lib2to3 import refactor
            return refactor, "lib2to3.fixes", "lib2to3 (Python standard library)"
        except ImportError:  # Python >= 3.13
            from fissix import refactor
            return refactor, "fissix.fixes", "fissix (fork of lib2to3)"


def run_2to3(source: str) -> tuple[str, str]:
    """The source after 2to3 with its default fixers (the explicit-only ones are not run)."""
    refactor, package, tool_name = _refactor_module()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tool = refactor.RefactoringTool(refactor.get_fixers_from_package(package))
        tree = tool.refactor_string(source, "deis.py")
    return str(tree), tool_name


def apply_substitutions(text: str) -> tuple[str, list[int]]:
    """Apply SUBSTITUTIONS; each old text must occur exactly once, and its new text not before."""
    counts = []
    for sub in SUBSTITUTIONS:
        count = text.count(sub.old)
        counts.append(count)
        if count != 1:
            raise ConversionError(f"substitution matched {count} times, not once: {sub.old!r} ({sub.reason})")
        text = text.replace(sub.old, sub.new)
    return text, counts


@dataclass
class Conversion:
    original: str
    after_2to3: str
    converted: str
    tool_name: str
    counts: list[int]

    def diff_2to3(self) -> str:
        return "".join(difflib.unified_diff(
            self.original.splitlines(keepends=True), self.after_2to3.splitlines(keepends=True),
            "deis.py (deis 1.9.1)", "deis.py (after 2to3)", n=0))

    def markdown(self) -> str:
        out = io.StringIO()
        w = out.write
        w("# Converting the Deis v1.9.1 client to Python 3\n\n")
        w("Generated by `python -m tests.compat.convert --write`; `tests/compat/test_conversion.py` checks it\n"
          "is in sync with `tests/compat/convert.py`. Do not edit by hand.\n\n")
        w(f"- Source: `{REQUIREMENT}` sdist from PyPI (`pip download --no-deps {REQUIREMENT}`), its `deis.py`\n"
          f"  with SHA-256 `{DEIS_PY_SHA256}`.\n")
        w(f"- Step 1: 2to3 with all default fixers ({self.tool_name}); the diff is below.\n")
        w(f"- Step 2: {len(SUBSTITUTIONS)} textual substitutions for what 2to3 cannot fix, each required to\n"
          "  match exactly once in the 2to3 output.\n")
        w("- Nothing else changes: the converted file runs as `python deis.py <args>` with the runtime\n"
          "  dependencies of the `test` extra (docopt, requests, tabulate, termcolor, python-dateutil,\n"
          "  PyYAML, pyOpenSSL for `urllib3.contrib.pyopenssl`).\n\n")
        w("## Step 2: substitutions\n\n")
        for number, sub in enumerate(SUBSTITUTIONS, 1):
            w(f"### {number}. {sub.reason}\n\n")
            w("```diff\n")
            for line in sub.old.splitlines():
                w(f"- {line}\n")
            for line in sub.new.splitlines():
                w(f"+ {line}\n")
            w("```\n\n")
        w("## Step 1: the 2to3 diff\n\n```diff\n")
        w(self.diff_2to3())
        w("```\n")
        return out.getvalue()


def convert() -> Conversion:
    original = original_source()
    after_2to3, tool_name = run_2to3(original)
    converted, counts = apply_substitutions(after_2to3)
    return Conversion(original, after_2to3, converted, tool_name, counts)


def write_client(folder: Path) -> tuple[Path, Conversion]:
    conversion = convert()
    path = Path(folder) / "deis.py"
    path.write_text(conversion.converted, encoding="utf-8")
    return path, conversion


if __name__ == "__main__":
    result = convert()
    if "--write" in sys.argv[1:]:
        CONVERSION_MD.write_text(result.markdown(), encoding="utf-8")
        print(f"wrote {CONVERSION_MD}")
    else:
        sys.stdout.write(result.converted)
