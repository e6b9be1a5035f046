"""``lwd policy`` commands: init writes a loadable checkpoint, verify refuses a tampered one."""

from __future__ import annotations

from pathlib import Path

import pytest
from lwd.cli import main
from lwd_policy.checkpoint import load_checkpoint
from lwd_policy.checkpoint_tools import sample_chunk
from lwd_policy.language import InstructionEncoder


def test_init_then_verify_then_tamper(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "v000000"
    assert main(["policy", "init", str(folder), "--cameras", "top,left_wrist", "--horizon", "16"]) == 0
    checkpoint = load_checkpoint(folder)
    assert checkpoint.config.cameras == ("top", "left_wrist") and checkpoint.config.horizon == 16
    assert main(["policy", "verify", str(folder)]) == 0
    assert "OK v000000" in capsys.readouterr().out
    (folder / "normalization.json").write_text("{}")
    assert main(["policy", "verify", str(folder)]) == 1
    assert "INVALID" in capsys.readouterr().out


def test_sample_chunk_reports_a_finite_chunk(tmp_path: Path, encoder: InstructionEncoder) -> None:
    folder = tmp_path / "v000001"
    assert main(["policy", "init", str(folder), "--version", "v000001", "--horizon", "12"]) == 0
    report = sample_chunk(folder, "put the peg in the socket", encoder=encoder)
    assert report.version == "v000001" and report.shape == (12, 14) and report.finite
    assert report.minimum <= report.maximum and report.latency_ms > 0
