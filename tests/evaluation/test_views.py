"""Issue 26 measures: novel-view and camera-following PSNR against physics (structure, determinism, errors)."""

import math

import pytest

from cosmos_sim.camera import CameraCoverage
from cosmos_sim.errors import InputError
from cosmos_sim.evaluation.views import ViewConfig, camera_following, novel_view
from cosmos_sim.world_model import WorldModel
from cosmos_sim.worlds import get_world


def test_novel_view_and_camera_following(tiny_world_model):
    model = WorldModel.load(tiny_world_model[0])
    cfg = ViewConfig(episodes=2, horizon=3, horizons=(1, 3))
    with pytest.raises(InputError, match="one fixed camera"):
        novel_view(model, "push", cfg)  # a fixed-camera model has no novel view to be scored on
    w = get_world("push")
    model.info["camera_coverage"] = CameraCoverage.of("random", w.default_camera, w.camera_range).to_dict()
    a, b = novel_view(model, "push", cfg), novel_view(model, "push", cfg)
    assert a == b  # seeded poses, policy and sampling
    for name in ("novel", "same"):
        assert a[name]["episodes"] == 2 and all(math.isfinite(a[name][h]) for h in ("1", "3"))
    assert a["gap"]["1"] == pytest.approx(a["same"]["1"] - a["novel"]["1"])
    f = camera_following(model, "push", cfg)
    assert f["following"]["episodes"] == 2 and all(math.isfinite(f["following"][h]) for h in ("1", "3"))
    with pytest.raises(InputError, match="horizons"):
        ViewConfig(horizon=4, horizons=(1, 16))
