"""The stack image (builds run in it) and the run image (buildpack apps run in it), made locally."""

from deis.stack.images import (
    RUN_REPOSITORY,
    STACK_REPOSITORY,
    STACK_VERSION,
    StackBuildError,
    StackImages,
    ensure_images,
    image_exists,
    run_tag,
    stack_tag,
)

__all__ = [
    "RUN_REPOSITORY",
    "STACK_REPOSITORY",
    "STACK_VERSION",
    "StackBuildError",
    "StackImages",
    "ensure_images",
    "image_exists",
    "run_tag",
    "stack_tag",
]
