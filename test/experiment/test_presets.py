"""Demo presets: named sizes with overrides, and the policy inputs they train with."""

from __future__ import annotations

import pytest
from lwd_experiment.presets import PRESETS, preset


def test_pixel_inputs_train_an_object_head_and_privileged_inputs_read_true_positions() -> None:
    pixels = preset("default", inputs="pixels").vla_config()
    privileged = preset("default", inputs="privileged").vla_config()
    assert (pixels.object_slots, pixels.perceived_objects) == (0, 2)
    assert (privileged.object_slots, privileged.perceived_objects) == (2, 0)
    assert pixels.io_signature() != privileged.io_signature(), "a robot feeds positions only to the privileged one"


def test_unknown_presets_and_inputs_are_refused_naming_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="valid presets are"):
        preset("huge")
    with pytest.raises(ValueError, match=r"valid inputs are \['pixels', 'privileged'\]"):
        preset("quick", inputs="lidar")
    assert all(p.inputs in ("pixels", "privileged") for p in PRESETS.values())
