"""Pipfile.lock (or Pipfile) -> requirements lines on stdout, so pip alone installs a Pipfile app."""

import json
import sys
import tomllib
from pathlib import Path


def line(name, spec):
    if isinstance(spec, str):
        return name if spec.strip() == "*" else name + (spec if spec[0] in "=<>!~" else "==" + spec)
    if "git" in spec or "path" in spec or "file" in spec:
        sys.stderr.write(f" !     {name}: git/path/file packages are not supported, skipped\n")
        return None
    text = name + (f"[{','.join(spec['extras'])}]" if spec.get("extras") else "")
    version = spec.get("version", "*")
    text += "" if version == "*" else version
    return text + (f"; {spec['markers']}" if spec.get("markers") else "")


def main(root):
    lock = Path(root, "Pipfile.lock")
    if lock.is_file():
        packages = json.loads(lock.read_text())["default"]
    else:
        packages = tomllib.loads(Path(root, "Pipfile").read_text()).get("packages", {})
    for name, spec in packages.items():
        text = line(name, spec)
        if text:
            print(text)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else ".")
