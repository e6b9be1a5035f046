"""Every user mistake on the ``lwd`` command line ends in one stderr line and exit code 2, and leaves the disk alone.

Each case runs ``lwd.cli.main`` in a fresh working folder holding an empty folder ``bags`` and a text file
``notes.txt`` (a non-bag, non-checkpoint), and checks: exit code 2, exactly one stderr line naming the
problem, no traceback, and no file or folder created (mistyped paths included). A few cases also run as real
``lwd`` processes, to show the console script behaves the same (about 4 s each: the CLI imports torch).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from lwd.cli import main
from lwd_fleet.errors import StoreError
from lwd_fleet.store import FleetStore

CASES = [
    # the defects of issue 17
    (["train", "bc", "--episodes", "bags", "--out", "ckpt", "--steps", "-5"], "argument --steps: must be > 0"),
    (["train", "bc", "--episodes", "bags", "--out", "ckpt", "--batch-size", "0"], "argument --batch-size: must be > 0"),
    (["train", "bc", "--episodes", "bags", "--out", "ckpt", "--lr", "nan"], "argument --lr: must be a finite number"),
    (["train", "serve", "--store", "file://./fleet", "--mix", "foo=1"], "unknown mix category 'foo'"),
    (["train", "serve", "--store", "file://./fleet", "--max-oversample", "0.5"], "must be >= 1 (1: uniform sampling)"),
    (["train", "serve", "--store", "ftp://host/fleet"], "unsupported store URL scheme 'ftp'"),
    (["store", "ls", "--store", "ftp://host/fleet"], "unsupported store URL scheme 'ftp'"),
    (["bag", "render", "notes.txt", "--fps", "0"], "argument --fps: must be > 0"),
    (["bag", "info", "notes.txt"], "notes.txt is not a rosbag2 folder"),
    (["store", "upload", "nonexistent"], "argument spool: nonexistent does not exist"),
    (["store", "ls", "--store", "file://./bags", "--catalog", "x/c.sqlite"], "folder x of x/c.sqlite does not exist"),
    (["store", "ls", "--store", "file://./typo"], "store file://./typo does not exist"),
    # found walking every command's arguments
    (["train", "bc", "--episodes", "nowhere", "--out", "ckpt"], "argument --episodes: nowhere does not exist"),
    (["train", "bc", "--episodes", "file://./typo", "--out", "ckpt"], "store file://./typo does not exist"),
    (["train", "bc", "--episodes", "bags", "--out", "ckpt", "--version", "../v1"], "invalid policy version"),
    (["train", "bc", "--episodes", "bags", "--out", "ckpt", "--vla-config", "notes.txt"], "config is not valid JSON"),
    (["train", "bc", "--episodes", "bags", "--out", "ckpt", "--camera-calibration", "notes.txt"], "not a camera calib"),
    (["train", "serve", "--store", "file://./bags", "--mix", "demo=-1"], "mix weight of demo must be >= 0"),
    (["train", "serve", "--store", "file://./bags", "--clone-mix", "demo=0"], "mix weights must have a positive sum"),
    (["train", "serve", "--store", "file://./bags", "--agent", '{"lamda": 1}'], "unknown AgentConfig fields: lamda"),
    (["train", "serve", "--store", "file://./bags", "--poll-interval", "inf"], "must be a finite number"),
    (["train", "serve", "--store", "file://./bags", "--agent", '{"lr": NaN}'], "must hold finite numbers, got NaN"),
    (["train", "serve", "--store", "file://./bags", "--catalog", "x/c.sqlite"], "folder x of x/c.sqlite"),
    (["train", "serve", "--store", "sftp:///fleet"], "names no host or bucket"),
    (["train", "serve", "--store", "file://./bags", "--canary-margin", "1.5"], "--canary-margin: must be in [0, 1)"),
    (["train", "serve", "--store", "file://./bags", "--canary-window", "0"], "--canary-window: must be > 0"),
    (["train", "serve", "--store", "file://./bags", "--canary", "stable"], "must differ from --channel"),
    (["train", "publish", "--store", "file://./fleet", "--checkpoint", "bags"], "bags has no manifest.json"),
    (["train", "status", "--work-dir", "nowhere"], "no trainer status at nowhere"),
    (["store", "stats", "--store", "file://./typo"], "store file://./typo does not exist"),
    (["train", "serve", "--store", "file://./typo", "--work-dir", "w"], "store file://./typo does not exist"),
    (["store", "ls", "--no-ingest", "--catalog", "c.sqlite"], "catalog c.sqlite does not exist"),
    (["store", "upload", "notes.txt"], "argument spool: notes.txt is not a folder"),
    (["bag", "recover", "nowhere"], "argument spool: nowhere does not exist"),
    (["bag", "play", "notes.txt", "--rate", "0"], "argument --rate: must be > 0"),
    (["bag", "replay", "notes.txt", "--seed", "-1"], "argument --seed: must be >= 0"),
    (["policy", "init", "ckpt", "--horizon", "0"], "argument --horizon: must be > 0"),
    (["policy", "init", "ckpt", "--cameras", ","], "argument --cameras: needs at least one name"),
    (["policy", "verify", "nowhere"], "argument folder: nowhere does not exist"),
    (["policy", "sample", "bags"], "bags"),
    (["sim", "demo", "--episodes", "0"], "argument --episodes: must be > 0"),
    (["demo", "--robots", "zero"], "argument --robots: not an integer"),
    (["intervention", "check-config", "nowhere.yaml"], "nowhere.yaml does not exist"),
    # release keys (signed policies)
    (["policy", "keygen", "--out", "keys", "--name", "../x"], "argument --name: must be a plain file name"),
    (["policy", "keygen", "--out", "notes.txt"], "notes.txt"),
    (
        ["train", "publish", "--store", "file://./bags", "--checkpoint", "bags", "--signing-key", "nowhere.key"],
        "argument --signing-key: nowhere.key does not exist",
    ),
]


def _tree(root: Path) -> set[Path]:
    return set(root.rglob("*"))


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working folder with an empty folder ``bags`` and a text file ``notes.txt``."""
    (tmp_path / "bags").mkdir()
    (tmp_path / "notes.txt").write_text("not a bag\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LWD_STORE", raising=False)
    return tmp_path


@pytest.mark.parametrize(("argv", "message"), CASES, ids=[" ".join(argv) for argv, _ in CASES])
def test_user_error_is_one_line_exit_2_and_creates_nothing(
    workdir: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    before = _tree(workdir)
    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse rejected an argument
        code = exit_.code
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"lwd {argv[0]}") and message in lines[0], err
    assert _tree(workdir) == before


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "bc", "--episodes", "bags", "--out", "ckpt", "--lr", "nan"], "argument --lr"),
        (["store", "ls", "--store", "file://./typo"], "store file://./typo does not exist"),
    ],
)
def test_the_console_script_reports_the_same(workdir: Path, argv: list[str], message: str) -> None:
    script = Path(sys.executable).with_name("lwd")
    result = subprocess.run([str(script), *argv], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert sorted(path.name for path in workdir.iterdir()) == ["bags", "notes.txt"]


def test_a_programming_error_keeps_its_traceback(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from lwd.commands import store

    def broken(args: object) -> int:
        raise KeyError("a bug, not a user error")

    monkeypatch.setattr(store, "run_upload", broken)
    with pytest.raises(KeyError):
        main(["store", "upload", "bags"])


@pytest.mark.parametrize("url", ["file://./typo", "memory://typo-store-of-test-cli-errors"])
def test_a_store_opened_for_reading_must_exist(workdir: Path, url: str) -> None:
    with pytest.raises(StoreError, match="does not exist"):
        FleetStore(url, create=False)
    assert not (workdir / "typo").exists()
    assert FleetStore("file://./bags", create=False).is_local


def test_keygen_prints_the_key_id_never_the_key_and_never_overwrites_a_key(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["policy", "keygen", "--out", "keys"]) == 0
    out = capsys.readouterr().out
    private = (workdir / "keys" / "release.key").read_text()
    assert "release key " in out and "PRIVATE" not in out and private.splitlines()[1] not in out
    before = (workdir / "keys" / "release.pub").read_bytes()
    assert main(["policy", "keygen", "--out", "keys"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "already exists" in err and "Traceback" not in err
    assert (workdir / "keys" / "release.pub").read_bytes() == before
    assert (workdir / "keys" / "release.key").read_text() == private
