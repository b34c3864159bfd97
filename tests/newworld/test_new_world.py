"""Adding a world is one module and one MJCF: the example world Slide (this folder) works everywhere.

Nothing in the package knows Slide: importing `newworld.slide` registers the world and its gym id, and
the fixture removes both again, so the global registry is the same before and after each test.
"""

import ast
import importlib
import json
import warnings
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import cosmos_sim
from cosmos_sim.policies import ScriptedPolicy
from cosmos_sim.policies.rollout import run_episode as run
from cosmos_sim.worlds import WORLDS, World, get_world, register_world, unregister_world
from cosmos_sim.worlds.mjcf import Mjcf

BACKENDS = ("mujoco", "pybullet")
ID = "cosmos_sim/Slide-v0"


@pytest.fixture
def slide():
    """The Slide module, its world registered; unregistered (world and gym id) afterwards."""
    module = importlib.import_module("newworld.slide")  # registers on first import
    if "Slide" not in WORLDS:  # imported by an earlier test, then cleaned up
        register_world(module.Slide)
    yield module
    if "Slide" in WORLDS:
        unregister_world("Slide")


def run_episode(env, policy, seed: int) -> bool:
    """True when info["success"] turns True before the episode ends."""
    return run(env, policy, seed, keep_obs=False).succeeded


def test_defining_the_class_registers_the_world_and_its_gym_id(slide):
    unregister_world("slide")
    assert "Slide" not in WORLDS and ID not in gym.registry
    module = importlib.reload(slide)  # runs the class statement again
    assert list(WORLDS)[-1] == "Slide" and ID in gym.registry
    assert type(get_world("slide")) is module.Slide
    assert Path(module.Slide().mjcf_path()) == Path(slide.__file__).parent / "assets" / "slide.xml"
    # Re-registering the same class is harmless; the built-in worlds keep their order.
    register_world(module.Slide)
    assert list(WORLDS)[:3] == ["Push", "Reach", "Drop"]


def test_a_taken_name_or_a_bad_name_is_refused(slide):
    with pytest.raises(ValueError, match="taken by newworld.slide.Slide"):
        type("Impostor", (World,), {"name": "slide", "asset": "slide.xml"})
    with pytest.raises(ValueError, match="identifier"):
        type("Spaced", (World,), {"name": "my world", "asset": "x.xml"})
    # A subclass without its own name is a helper, not a world; register=False keeps a named one out too.
    type("Helper", (slide.Slide,), {})
    type("Probe", (World,), {"name": "Probe", "asset": "probe.xml"}, register=False)
    assert list(WORLDS).count("Slide") == 1 and "Helper" not in WORLDS and "Probe" not in WORLDS


@pytest.mark.parametrize("backend", BACKENDS)
def test_check_env_and_expert_in_both_backends(slide, backend):
    env = gym.make(ID, backend=backend, render_mode="rgb_array", image_size=32)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            check_env(env.unwrapped, skip_render_check=False)
        assert all(run_episode(env, ScriptedPolicy("slide", skill=1.0), s) for s in (0, 1, 2))
        assert sum(run_episode(env, ScriptedPolicy("slide", skill=0.0, seed=1), s) for s in range(4)) <= 2
    finally:
        env.close()


def test_collect_and_compare_physics(slide, tmp_path):
    from cosmos_sim.cli import main
    from cosmos_sim.data import CollectConfig, collect

    manifest = collect(CollectConfig(world="slide", workers=1, episodes=2, image_size=16), tmp_path / "data",
                       progress=False)
    assert manifest["world"] == "Slide" and sorted(s for sh in manifest["shards"] for s in sh["seeds"]) == [0, 1]
    out = tmp_path / "compare"
    code = main(["compare", "--world", "slide", "--physics-only", "--episodes", "2", "--open-loop-episodes", "1",
                 "--horizon", "3", "--videos", "0", "--out", str(out), "--no-progress"])
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    assert report["config"]["world"] == "Slide" and report["closed_loop"].keys() == set(BACKENDS)
    assert report["closed_loop"]["mujoco"]["scripted:1"]["success_rate"]["mean"] == 1.0


def test_geometry_comes_from_the_mjcf(slide, tmp_path):
    assert cosmos_sim.get_world("reach").links == (0.25, 0.2)  # the capsules' fromto
    assert slide.Slide().max_speed == 0.25  # the actuators' ctrlrange
    with pytest.raises(KeyError, match="slide.xml has no geom named 'wheel'"):
        slide.Slide().geom("wheel")
    with pytest.raises(KeyError, match="no 'mass' attribute"):
        _ = slide.Slide().geom("table").mass
    # Angles follow <compiler angle>: MuJoCo's default is degrees.
    path = tmp_path / "tilt.xml"
    path.write_text('<mujoco><worldbody><geom name="g" type="box" size="1 1 1" euler="0 90 0"/>'
                    '<body><joint name="j" range="-90 90"/></body></worldbody></mujoco>')
    mj = Mjcf(path)
    np.testing.assert_allclose(mj.geom("g").rotation() @ [0, 0, 1], [1, 0, 0], atol=1e-12)
    np.testing.assert_allclose(mj.joint("j").range, (-np.pi / 2, np.pi / 2))


def test_worlds_stay_at_the_bottom():
    """worlds/ imports neither policies, envs, gym nor a physics engine (the data flow of DESIGN.md)."""
    root = Path(cosmos_sim.worlds.__file__).parent
    banned = ("cosmos_sim.policies", "cosmos_sim.envs", "gymnasium", "mujoco", "pybullet", "torch")
    for path in root.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            assert not [n for n in names if n.startswith(banned)], f"{path.name} imports {names}"


def test_definition_hash_ignores_comments_and_docstrings(tmp_path):
    """A comment or docstring edit keeps a world's hash (datasets and models stay valid); a number does not."""
    import importlib.util
    import re
    import shutil
    import sys

    text = (Path(__file__).parent / "slide.py").read_text()
    shutil.copytree(Path(__file__).parent / "assets", tmp_path / "assets")

    def hashes(code: str) -> tuple[str, str]:
        path = tmp_path / "hash_probe.py"
        path.write_text(code.replace('name = "Slide"', 'name = "HashProbe"'))
        spec = importlib.util.spec_from_file_location("hash_probe", path)
        module = importlib.util.module_from_spec(spec)
        sys.modules["hash_probe"] = module
        try:
            spec.loader.exec_module(module)
            w = get_world("HashProbe")
            return w.definition_hash(), w.legacy_definition_hash()
        finally:
            unregister_world("HashProbe")
            del sys.modules["hash_probe"]

    plain, plain_legacy = hashes(text)
    edited, edited_legacy = hashes("# a new comment\n" + text.replace('"""', '"""Edited. ', 1))
    assert edited == plain and edited_legacy != plain_legacy  # the old, raw-text form changed with the comment
    number = re.search(r"\b0\.\d+\b", text).group(0)
    assert hashes(text.replace(number, number + "1", 1))[0] != plain
