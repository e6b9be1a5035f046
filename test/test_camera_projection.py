"""Camera calibration files: projection arithmetic, the JSON round trip and the errors a bad file gets."""

from __future__ import annotations

import numpy as np
import pytest
from lwd_interfaces.camera_projection import CalibrationError, CameraCalibration, CameraProjection, pinhole_matrix


def _looking_down() -> CameraProjection:
    """A camera 1 m above the origin looking straight down, 90° vertical field of view, 40x20 pixels."""
    rotation = np.eye(3)  # camera x = world x, image up = world y, looking along -z (down)
    return CameraProjection(40, 20, pinhole_matrix(np.array([0.0, 0.0, 1.0]), rotation, 90.0, 40, 20))


def test_points_project_to_image_coordinates_with_the_edges_at_one():
    camera = _looking_down()
    points = np.array([[0.0, 0.0, 0.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.5, -0.5, 0.5]])
    # 90° over 20 rows: 1 m off-axis at 1 m depth is 10 pixels, the top edge; across 40 columns it is half-way out
    np.testing.assert_allclose(camera.normalized(points), [[0, 0], [0, -1], [0.5, 0], [0.5, 1]], atol=1e-12)


def test_unknown_points_and_points_behind_the_camera_have_no_image_position():
    projected = _looking_down().normalized(np.array([[np.nan, 0.0, 0.0], [0.0, 0.0, 2.0], [0.1, 0.0, 0.0]]))
    assert np.isnan(projected[:2]).all() and np.isfinite(projected[2]).all()


def test_calibration_round_trips_through_json_and_stacks_cameras():
    calibration = CameraCalibration({"top": _looking_down(), "side": _looking_down()})
    loaded = CameraCalibration.from_json(calibration.to_json())
    np.testing.assert_array_equal(loaded.cameras["top"].matrix, calibration.cameras["top"].matrix)
    assert loaded.normalized(np.zeros((5, 2, 3)), ("side", "top")).shape == (5, 2, 2, 2)
    with pytest.raises(CalibrationError, match=r"no projection for camera\(s\) \['wrist'\]"):
        loaded.normalized(np.zeros((1, 1, 3)), ("top", "wrist"))


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("not json", "not a camera calibration"),
        ('{"cameras": {}}', "at least one camera"),
        ('{"cameras": {"top": {"width": 4, "height": 4, "matrix": [[1, 2], [3, 4]]}}}', "must be 3x4"),
        ('{"cameras": {"top": {"width": 0, "height": 4, "matrix": []}}}', "positive integers"),
        ('{"cameras": {"top": {"width": 4, "height": 4}}}', "'matrix'"),
    ],
)
def test_a_bad_calibration_file_names_itself_and_the_reason(tmp_path, text, reason):
    path = tmp_path / "calibration.json"
    path.write_text(text)
    with pytest.raises(CalibrationError, match=reason) as error:
        CameraCalibration.read(path)
    assert str(path) in str(error.value)
    with pytest.raises(CalibrationError, match="cannot read"):
        CameraCalibration.read(tmp_path / "missing.json")
