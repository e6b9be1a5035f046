"""Argument types shared by every ``lwd`` command: each checks one kind of value at parse time.

Used as ``add_argument(..., type=positive_int)``: a bad value raises ``argparse.ArgumentTypeError``, which
argparse prints as one line naming the option, with exit code 2, before the command has done anything (so
no folder, cache or store is created for a command that cannot run). Checks that need a project package
(store schemes, policy versions, sampling categories) import it only when called, so building the parser
stays cheap. Paths that must exist are declared with ``add_path`` and checked by ``check_paths`` (which
``lwd.cli`` runs between parsing and the command), raising ``CommandError``: one line, exit code 2.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit


class CommandError(Exception):
    """A user error a command finds only when it runs (e.g. a catalog that does not exist): one line, exit 2."""


def _number(kind: type[float] | type[int], text: str) -> float | int:
    """``kind`` of the text; ArgumentTypeError when it is not one, or is a NaN/inf float."""
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not {'an integer' if kind is int else 'a number'}: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
    return value


def _bounded(kind: type[float] | type[int], zero_ok: bool) -> Callable[[str], Any]:
    """An argparse type: a finite ``kind`` > 0, or >= 0 with ``zero_ok``."""

    def parse(text: str) -> float | int:
        value = _number(kind, text)
        if not (value >= 0 if zero_ok else value > 0):
            raise argparse.ArgumentTypeError(f"must be {'>=' if zero_ok else '>'} 0, got {text}")
        return value

    parse.__name__ = f"{'non_negative' if zero_ok else 'positive'}_{kind.__name__}"
    return parse


positive_int = _bounded(int, zero_ok=False)
"""A count: an integer >= 1."""
non_negative_int = _bounded(int, zero_ok=True)
"""A seed or an index: an integer >= 0."""
positive_float = _bounded(float, zero_ok=False)
"""A rate, a period or a speed: a finite number > 0."""
non_negative_float = _bounded(float, zero_ok=True)
"""A duration that may be zero: a finite number >= 0."""


def fraction(text: str) -> float:
    """An argparse type: a share or margin, a number in [0, 1)."""
    value = _number(float, text)
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text}")
    return value


def oversample_bound(text: str) -> float:
    """An argparse type: the replay mix's bound, a finite number >= 1 (1: uniform sampling)."""
    value = _number(float, text)
    if not value >= 1.0:
        raise argparse.ArgumentTypeError(f"must be >= 1 (1: uniform sampling), got {text}")
    return value


PATH_KINDS = {
    "dir": (Path.is_dir, "is not a folder"),
    "file": (Path.is_file, "is not a file"),
    "in_dir": (lambda path: path.parent.is_dir() and not path.is_dir(), "is a folder, not a file"),
}
"""What ``add_path`` can require of a path: the test, and what a path failing it (but existing) is."""


def add_path(parser: argparse.ArgumentParser, *names: str, must_be: str, **options: Any) -> None:
    """``parser.add_argument(*names, **options)`` (type Path by default) for a path that must be ``must_be``.

    ``must_be`` is a key of PATH_KINDS; ``in_dir`` is a file to write whose folder must exist (a mistyped folder
    is an error, not a mkdir). The path is checked by ``check_paths`` after parsing, not by the parser, so that
    parsing a command line (``--help``, the operator guide's tests) never depends on this machine's files.
    A URL (a text holding ``://``, see ``store_url``) is not a path and is not checked.
    """
    action = parser.add_argument(*names, **{"type": Path, **options})
    checks = dict(parser.get_default("path_checks") or {})
    checks[action.dest] = (names[0], must_be)
    parser.set_defaults(path_checks=checks)


def check_paths(args: argparse.Namespace) -> None:
    """CommandError for the first path argument (declared by ``add_path``) that is not what it must be."""
    for dest, (name, must_be) in (getattr(args, "path_checks", None) or {}).items():
        value = getattr(args, dest)
        if value is None or "://" in str(value):
            continue
        test, failure = PATH_KINDS[must_be]
        path = Path(value)
        if test(path):
            continue
        if must_be == "in_dir" and not path.parent.is_dir():
            raise CommandError(f"argument {name}: folder {path.parent} of {value} does not exist")
        raise CommandError(f"argument {name}: {value} {failure if path.exists() else 'does not exist'}")


def store_url(text: str) -> str:
    """A fleet store URL of a scheme the store supports (a text without ``://`` is a local path)."""
    from lwd_fleet.store import SCHEMES, redact_url

    if "://" not in text:
        return text
    parts = urlsplit(text)
    if parts.scheme not in SCHEMES:
        raise argparse.ArgumentTypeError(
            f"unsupported store URL scheme {parts.scheme!r} in {redact_url(text)}; use one of {', '.join(SCHEMES)}"
        )
    if parts.scheme in ("sftp", "ssh", "s3") and not parts.netloc:
        raise argparse.ArgumentTypeError(f"store URL {redact_url(text)} names no host or bucket")
    return text


def policy_version(text: str) -> str:
    """A policy version string the checkpoint format accepts (e.g. ``v000042-canary``)."""
    from lwd_policy.checkpoint import CheckpointError, check_version

    try:
        return check_version(text)
    except CheckpointError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def file_name(text: str) -> str:
    """A plain file name (letters, digits, ``._-``; no folder, not hidden), e.g. a key pair's name."""
    if not text or text.startswith(".") or not all(char.isalnum() or char in "._-" for char in text):
        raise argparse.ArgumentTypeError(f"must be a plain file name (letters, digits, . _ -), got {text!r}")
    return text


def name_list(text: str) -> tuple[str, ...]:
    """A comma-separated list of at least one name, e.g. camera names ``top,left_wrist``."""
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    if not names:
        raise argparse.ArgumentTypeError(f"needs at least one name, got {text!r}")
    return names


def sampling_mix(text: str) -> dict[str, float]:
    """``demo=0.25,autonomous=0.5`` → weights per replay category: known names, finite weights >= 0, sum > 0."""
    from lwd_learner.replay_buffer import CATEGORIES

    mix = {}
    for part in filter(None, (item.strip() for item in text.split(","))):
        name, separator, value = (piece.strip() for piece in part.partition("="))
        if not separator:
            raise argparse.ArgumentTypeError(f"mix entry {part!r} is not name=weight")
        if name not in CATEGORIES:
            raise argparse.ArgumentTypeError(f"unknown mix category {name!r}; use {', '.join(CATEGORIES)}")
        mix[name] = _number(float, value)
        if mix[name] < 0:
            raise argparse.ArgumentTypeError(f"mix weight of {name} must be >= 0, got {value}")
    if sum(mix.values()) <= 0:
        raise argparse.ArgumentTypeError(f"mix weights must have a positive sum, got {text!r}")
    return mix


def agent_overrides(text: str) -> dict[str, Any]:
    """A JSON object whose keys are AgentConfig fields and whose numbers are finite, e.g. ``{"lam": 0.3}``."""
    import dataclasses

    from lwd_learner.agent_config import AgentConfig

    def refuse(constant: str) -> float:
        raise argparse.ArgumentTypeError(f"must hold finite numbers, got {constant}")

    try:
        overrides = json.loads(text, parse_constant=refuse)
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(f"not JSON: {error}") from None
    if not isinstance(overrides, dict):
        raise argparse.ArgumentTypeError(f"must be a JSON object, got {type(overrides).__name__}")
    unknown = sorted(set(overrides) - {field.name for field in dataclasses.fields(AgentConfig)})
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown AgentConfig fields: {', '.join(unknown)}")
    return overrides
