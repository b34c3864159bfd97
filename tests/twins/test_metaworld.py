"""Meta-World v3 (the `metaworld` extra, on MuJoCo 3.3.0: `make test-mujoco3`) recorded by `cosmos-sim collect --env`:
its Gymnasium id, kwargs, states, frames and seeds. Skipped where metaworld is not installed; trains nothing."""

import json

import numpy as np
import pytest

metaworld = pytest.importorskip("metaworld", reason="Meta-World is the `metaworld` extra (make test-mujoco3)")

from cosmos_sim.cli import main  # noqa: E402
from cosmos_sim.data import EpisodeDataset  # noqa: E402
from cosmos_sim.data.shards import read_manifest  # noqa: E402

ID = "metaworld:Meta-World/MT1"  # "module:id": the module registers the id, in worker processes too
# seed: Meta-World draws its task list from it; max_episode_steps: short episodes (its own limit is 500).
KWARGS = {"env_name": "push-v3", "seed": 0, "max_episode_steps": 6}
STEPS = KWARGS["max_episode_steps"]


def collect(out, seed: int, episodes: int) -> EpisodeDataset:
    assert main(["collect", "--env", ID, "--env-kwargs", json.dumps(KWARGS), "--policy", "random",
                 "--episodes", str(episodes), "--seed", str(seed), "--image-size", "32", "--out", str(out),
                 "--no-progress"]) == 0
    return EpisodeDataset(out)


@pytest.mark.filterwarnings("ignore::UserWarning")  # Gymnasium's checker on Meta-World's observation bounds
def test_collect_records_a_metaworld_env(tmp_path):
    ds = collect(tmp_path / "a", seed=0, episodes=2)
    m = read_manifest(tmp_path / "a")
    assert m["source"]["env_id"] == ID and m["source"]["env_kwargs"] == KWARGS
    assert m["collection"]["backend"] == "env" and list(ds.seeds) == [0, 1]
    for i in range(2):
        ep = ds[i]
        assert ep["states"].shape == (STEPS + 1, 39) and np.all(np.isfinite(ep["states"]))
        assert ep["actions"].shape == (STEPS, 4) and np.abs(ep["actions"]).max() <= 1
        assert ep["pixels"].shape == (STEPS + 1, 32, 32, 3) and ep["pixels"].std() > 10  # a scene, not a blank
        assert ep["metadata"]["has_success"] and len(ep["metadata"]["step_success"]) == STEPS
    # The episode seed picks the task (object and goal positions): seeds 0 and 1 start apart ...
    assert np.abs(ds[0]["states"][0] - ds[1]["states"][0]).max() > 1e-3
    # ... and episode seed 1 is the same episode when collected on its own (a resume or another worker).
    # Meta-World ignores reset(seed=) and draws the task from the RNG its own seed() sets: SourceEnv calls it.
    alone = collect(tmp_path / "b", seed=1, episodes=1)
    assert list(alone.seeds) == [1]
    for key in ("states", "actions", "pixels"):
        np.testing.assert_array_equal(alone[0][key], ds[1][key])


def test_a_task_name_that_does_not_exist_lists_close_matches():
    from cosmos_sim.envs.source_env import SourceEnvError, env_world

    with pytest.raises(SourceEnvError, match="close matches: push-v3"):
        env_world(ID, {**KWARGS, "env_name": "push-v9"})


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_the_twin_starts_where_the_env_does():
    """reset(seed=s) of the twin and of the env (the `env` backend, as compare --env runs it) start from the same
    state: the model's world name records the kwargs (task list seed included), and both seed Meta-World's own
    RNG, from which it draws the task. (Meta-World's raw env ignores reset(seed=): only its RNG picks the task.)"""
    import gymnasium as gym

    from cosmos_sim.envs.source_env import SourceEnv, env_world

    from twins.untrained import untrained_twin

    world = env_world(ID, KWARGS)
    twin = gym.make("cosmos_sim/Learned-v0", model=untrained_twin(world.name), obs_mode="state", device="cpu")
    env = SourceEnv(world, obs_mode="state")
    try:
        firsts = []
        for seed in (0, 3, 3, 7):
            a, _ = twin.reset(seed=seed)
            b, _ = env.reset(seed=seed)
            np.testing.assert_allclose(a, world.state_to_obs(b), atol=1e-6)
            firsts.append(a)
        assert np.abs(firsts[0] - firsts[1]).max() > 1e-3 and np.array_equal(firsts[1], firsts[2])
    finally:
        twin.close()
        env.close()
