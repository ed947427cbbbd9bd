"""`python -m deis.stack [--rebuild]`: make sure the stack and run images exist; print their tags."""

from __future__ import annotations

import argparse
import sys

from deis.stack import StackBuildError, ensure_images


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deis.stack", description=__doc__)
    parser.add_argument("--rebuild", action="store_true",
                        help="build both images again even if their tags exist")
    args = parser.parse_args(argv)
    try:
        images = ensure_images(rebuild=args.rebuild)
    except StackBuildError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"stack: {images.stack}")
    print(f"run:   {images.run}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
