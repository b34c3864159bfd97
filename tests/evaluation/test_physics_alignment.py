"""Physical alignment on passive drops: the bounce detector, the metrics' exact values, and every backend."""

import json

import numpy as np
import pytest

from cosmos_sim.evaluation import physics_alignment as pa
from cosmos_sim.evaluation.physics_alignment import AlignmentConfig
from cosmos_sim.worlds import get_world

G, DT = 9.81, 0.05


def bouncing_ball(z0: float, radius: float, restitution: float, steps: int) -> tuple[np.ndarray, np.ndarray, float]:
    """A ball dropped from rest at z0 onto a floor, sampled every DT: (z, vz, time of the first impact)."""
    t_hit = np.sqrt(2 * (z0 - radius) / G)
    t = np.arange(steps + 1) * DT
    up = restitution * G * t_hit  # speed leaving the floor
    after = t - t_hit
    z = np.where(t < t_hit, z0 - G * t**2 / 2, radius + up * after - G * after**2 / 2)
    vz = np.where(t < t_hit, -G * t, up - G * after)
    return z, vz, t_hit


def test_first_bounce_on_hand_made_curves():
    z, vz, t_hit = bouncing_ball(0.3, 0.045, 0.5, 12)
    step, height = pa.first_bounce(z, vz, G * DT)
    assert step == int(np.ceil(t_hit / DT))  # the first sample after the impact
    assert vz[step - 1] < 0 < vz[step]
    apex = 0.045 + (0.5 * G * t_hit) ** 2 / (2 * G)  # the rebound's true peak; sampling can only miss it from below
    assert apex - 0.005 < height <= apex + 1e-9
    # typed by hand: falls, lands without rebound at step 3
    assert pa.first_bounce([0.2, 0.19, 0.14, 0.05, 0.05], [0.0, -0.49, -0.98, 0.0, 0.0], G * DT) == (3, 0.05)
    # lands on a slope at step 3 and slides down it: still falling, but far slower than free fall would
    assert pa.first_bounce([0.2, 0.19, 0.14, 0.1, 0.09], [0.0, -0.49, -0.98, -0.3, -0.3], G * DT)[0] == 3
    # thrown up, then free fall all the way: no touchdown
    step, height = pa.first_bounce([0.2, 0.21, 0.2, 0.17], [0.4, -0.09, -0.58, -1.07], G * DT)
    assert step is None and np.isnan(height)
    with pytest.raises(ValueError, match="1-D"):
        pa.first_bounce([0.1, 0.2], [0.0], G * DT)


def test_geometry_comes_from_the_mjcf():
    w = get_world("drop")
    assert pa.falling_objects(w) == ("obj0", "obj1", "obj2")
    assert pa.bounding_radius(w, "obj0") == w.geom("obj0").size[0]  # a sphere
    assert pa.bounding_radius(w, "obj1") == pytest.approx(np.linalg.norm(w.geom("obj1").size))  # a box's corner
    assert pa.gravity(w) == pytest.approx(9.81)
    with pytest.raises(ValueError, match="falling_objects"):
        AlignmentConfig(world="push")


@pytest.mark.parametrize("bad, match", [({"steps": 1}, "steps"), ({"episodes": 0}, "episodes"),
                                        ({"backends": ("bullet",)}, "backends"), ({"camera": "moving"}, "camera"),
                                        ({"free_fall_fraction": 1.5}, "free_fall_fraction")])
def test_bad_config_is_a_value_error(bad, match):
    with pytest.raises(ValueError, match=match):
        AlignmentConfig(**bad)


def drop_states(w, positions: dict[str, np.ndarray]) -> np.ndarray:
    """States [1, T+1, S] with the given obj positions [T+1, 3] (velocities zero), the rest parked."""
    T1 = len(next(iter(positions.values())))
    s = np.zeros((1, T1, w.state_dim))
    L = w.state_layout
    for o in pa.falling_objects(w):
        s[0, :, L.slice(f"{o}_pos")] = positions.get(o, np.array([0.0, 0.0, -0.45]))
        s[0, :, L.slice(f"{o}_rot6")] = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
    return s


def test_resting_error_and_collisions_on_hand_made_states():
    w = get_world("drop")
    reach = pa.bounding_radius(w, "obj0") + pa.bounding_radius(w, "obj1")
    z = 0.05
    a = np.array([[-0.2, 0.0, z], [-0.1, 0.0, z], [-0.1, 0.0, z]])
    meet = np.array([[0.2, 0.0, z], [-0.1 + reach - 0.002, 0.0, z], [0.1, 0.0, z]])  # touch obj0 at step 1
    apart = meet + [0.0, 0.3, 0.0]
    ref = drop_states(w, {"obj0": a, "obj1": meet})
    moved = a.copy()
    moved[-1] += (0.03, 0.04, 0.0)  # obj0 comes to rest 5 cm away
    other = drop_states(w, {"obj0": moved, "obj1": apart})
    r = pa.align(w, ref, {"mujoco": ref, "other": other}, AlignmentConfig(backends=("mujoco",)))
    assert r["reference"]["objects_in_play"] == 2 and r["reference"]["colliding_pairs"] == 1
    same, o = r["backends"]["mujoco"], r["backends"]["other"]
    assert same["collisions"] == {"pairs": 1, "reference": 1, "backend": 1, "both": 1, "agreement": 1.0,
                                  "precision": 1.0, "recall": 1.0, "episode_agreement": 1.0}
    assert o["collisions"]["recall"] == 0.0 and o["collisions"]["precision"] is None
    assert o["collisions"]["agreement"] == 0.0 and o["collisions"]["episode_agreement"] == 0.0
    # obj0 5 cm off, obj1 30 cm off; mean over the two objects in play
    assert o["resting"]["error_m"]["mean"] == pytest.approx((0.05 + 0.3) / 2)
    assert o["resting"]["z_error_m"]["mean"] == pytest.approx(0.0)
    assert o["per_episode"]["resting_error_m"] == [pytest.approx(0.175)]
    with pytest.raises(ValueError, match="shape"):
        pa.align(w, ref, {"other": other[:, :2]}, AlignmentConfig(backends=("mujoco",)))


@pytest.fixture(scope="module")
def physics(tmp_path_factory):
    out = tmp_path_factory.mktemp("alignment")
    cfg = AlignmentConfig(episodes=3, steps=12, backends=("mujoco", "pybullet"), image_size=16, plot_drops=2)
    return pa.physics_alignment(cfg, out=out), out


def test_mujoco_against_itself_is_perfect(physics):
    r, _ = physics
    ref, m = r["reference"], r["backends"]["mujoco"]
    assert r["episodes"] == 3 and r["seeds"] == [1000, 1001, 1002] and ref["objects_in_play"] >= 3
    assert ref["bounce_found"] == 1.0  # every object in play lands within the 12 steps
    assert m["bounce"]["episodes_within_one_step"] == 1.0 and m["bounce"]["within_one_step"] == 1.0
    for part, key in (("resting", "error_m"), ("height", "error_m"), ("bounce", "height_error_m"),
                      ("bounce", "time_error_steps")):
        assert m[part][key]["mean"] == 0.0 and m[part][key]["p90"] == 0.0
    assert m["collisions"]["agreement"] == 1.0 and m["collisions"]["episode_agreement"] == 1.0
    assert r["targets"] == {}  # no learned world, no targets


def test_pybullet_is_finite_and_plausible(physics):
    r, out = physics
    p = r["backends"]["pybullet"]
    assert 0.0 <= p["bounce"]["within_one_step"] <= 1.0 and p["bounce"]["found"] == 1.0
    table = get_world("drop").geom("table").size[0]  # objects stay on the table: errors under its width
    for key in ("error_m", "xy_error_m", "z_error_m"):
        assert 0.0 <= p["resting"][key]["mean"] < 2 * table
    assert 0.0 < p["height"]["error_m"]["mean"] < 0.1
    assert len(p["height"]["error_curve_m"]) == 13 and p["height"]["error_curve_m"][0] == 0.0
    json.dumps(r, allow_nan=False)  # JSON-ready: NaN becomes None
    assert (out / r["files"]["heights_plot"]).stat().st_size > 1000
    md = "\n".join(pa.markdown(r))
    assert "| vs MuJoCo | MuJoCo (itself) | PyBullet |" in md and r["files"]["heights_plot"] in md


# --- a learned world ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_drop_model(tmp_path_factory):
    """A Drop world model trained in seconds at 32x32 on passive drops (deterministic family, the
    object-centric state model its recipe uses)."""
    from cosmos_sim.data import CollectConfig, collect
    from cosmos_sim.dynamics.train import StateModelConfig, train_dynamics
    from cosmos_sim.tokenizer import preset, train_tokenizer
    from cosmos_sim.training import TrainConfig

    root = tmp_path_factory.mktemp("tiny_drop")
    collect(CollectConfig(world="drop", policy="zero", image_size=32, episodes=3), root / "data", progress=False)
    train_tokenizer(root / "data", root / "tok", preset("tiny", 32), TrainConfig(steps=10, batch_size=4),
                    progress=False)
    train_dynamics(root / "data", root / "tok", root / "dyn", "deterministic", "tiny",
                   TrainConfig(steps=10, batch_size=8, lr=3e-3, warmup_steps=2), progress=False,
                   state=StateModelConfig(model="objects", steps=40))
    return root / "dyn"


@pytest.mark.slow  # trains a tiny Drop world model
def test_a_learned_world_runs_through_it(tiny_drop_model, tmp_path):
    from cosmos_sim.world_model import WorldModel

    assert len(WorldModel.load(tiny_drop_model).state_head.config["slots"]) == 3  # saved and loaded back
    cfg = AlignmentConfig(episodes=3, steps=10, backends=("pybullet", "world_model"), plot_drops=2, device="cpu")
    r = pa.physics_alignment(cfg, model=tiny_drop_model, out=tmp_path)
    learned = r["backends"]["world_model"]
    assert learned["resting"]["error_m"]["n"] == r["reference"]["objects_in_play"]
    assert np.isfinite(learned["height"]["error_m"]["mean"]) and 0.0 <= learned["bounce"]["within_one_step"] <= 1.0
    assert set(r["targets"]) == {"bounce_within_one_step", "resting_error_ratio"}
    assert isinstance(r["targets"]["bounce_within_one_step"]["met"], bool)
    json.dumps(r, allow_nan=False)
    md = "\n".join(pa.markdown(r))
    assert "| vs MuJoCo | PyBullet | learned |" in md and "Targets for the learned world" in md
    assert (tmp_path / r["files"]["heights_plot"]).is_file()
    with pytest.raises(ValueError, match="needs a model"):
        pa.rollouts(cfg)
