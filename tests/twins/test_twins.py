"""The learned twin of any Gymnasium env, on a point mass defined here (twins/pointmass.py): collect, train,
`gym.make("cosmos_sim/Learned-v0")` with the source env's spaces, compare, and the inputs it refuses."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

import cosmos_sim  # noqa: F401  (registers cosmos_sim/Learned-v0)
from cosmos_sim.data import CollectConfig, EpisodeDataset, collect
from cosmos_sim.data.shards import read_manifest
from cosmos_sim.envs.source_env import SourceEnv, SourceEnvError, env_world
from cosmos_sim.errors import ActionError, ConfigMismatchError

from margins import above, below
from twins import pointmass

ID = "cosmos_test/PointMass-v0"
WORLD = f"env:{ID}"


@pytest.fixture(autouse=True)
def _registered():
    pointmass.register()  # the suite's guard removes ids registered during a test


@pytest.fixture(scope="session")
def twin(tmp_path_factory):
    """A point-mass twin at 32x32 (tests/assets/pointmass_twin.safetensors) and its data, collected again:
    (run dir, data dir). Nothing is trained."""
    from assets.build import POINTMASS_TWIN, TWIN_DATA, install

    pointmass.register()
    root = tmp_path_factory.mktemp("twin")
    collect(CollectConfig(**TWIN_DATA), root / "data", progress=False)
    return install(POINTMASS_TWIN, root / "run"), root / "data"


def toward_origin(obs):
    """A policy written for gym.make(ID): the source env's observation in, its action (Box(-2, 2)) out."""
    return np.clip(-4.0 * obs[:2] - 2.0 * obs[2:], -2, 2).astype(np.float32)


# --- the source env as a world -------------------------------------------------------------------------
def test_env_world_describes_the_source():
    w = env_world(ID)
    assert w.name == WORLD and w.state_dim == 4 and w.action_dim == 2 and w.max_episode_steps == 40
    a = np.array([-2.0, 2.0], np.float32)
    assert np.allclose(w.from_source_action(a), [-1, 1]) and np.allclose(w.to_source_action([-1, 1]), a)
    assert env_world(ID, {"gain": 0.2}).name == WORLD + '?{"gain":0.2}'
    assert env_world(ID, {"gain": 0.2}).definition_hash() != w.definition_hash()


def test_collect_records_the_env_with_its_seeds(tmp_path):
    m = collect(CollectConfig(world=WORLD, policy="random", image_size=32, episodes=3), tmp_path, progress=False)
    assert m["source"]["env_id"] == ID and m["source"]["gymnasium"] == gym.__version__
    assert m["collection"]["backend"] == "env"
    ds = EpisodeDataset(tmp_path)
    src = gym.make(ID)
    for i in range(3):
        ep = ds[i]
        first, _ = src.reset(seed=ds.seeds[i])
        assert np.allclose(ep["states"][0], first, atol=1e-6)  # episode seed s starts where reset(seed=s) does
        assert ep["pixels"].shape[1:] == (32, 32, 3) and np.abs(ep["actions"]).max() <= 1
        assert len(ep["metadata"]["step_success"]) == len(ep["actions"]) and ep["metadata"]["has_success"]


def test_an_envs_default_collection_policy_is_noise():
    """An env has no scripted expert: its "mix" (the default) is random and exploration, as recorded."""
    assert CollectConfig(world=WORLD, image_size=32).policy == "random,explore"
    assert CollectConfig(world=WORLD, policy="random", image_size=32).policy == "random"


def test_frames_of_an_env_without_width_height_are_resized(tmp_path):
    collect(CollectConfig(world="env:cosmos_test/PointMassFixed-v0", policy="random", image_size=32, episodes=1),
            tmp_path, progress=False)
    assert EpisodeDataset(tmp_path)[0]["pixels"].shape[1:] == (32, 32, 3)


def test_a_policy_for_the_source_env_collects_as_module_callable(tmp_path):
    collect(CollectConfig(world=WORLD, policy="twins.test_twins:toward_origin", image_size=32, episodes=2),
            tmp_path, progress=False)
    assert any(EpisodeDataset(tmp_path)[i]["metadata"]["success"] for i in range(2))  # it reaches the goal
    # degraded with modifiers (a benchmark's data from an expert it does not rank): slowed, it acts smaller
    collect(CollectConfig(world=WORLD, policy="twins.test_twins:toward_origin@speed=0.25", image_size=32, episodes=2),
            tmp_path / "slow", progress=False)
    a, b = EpisodeDataset(tmp_path)[0]["actions"], EpisodeDataset(tmp_path / "slow")[0]["actions"]
    assert np.allclose(b[0], 0.25 * a[0], atol=1e-6)  # the same first state (seed), the action scaled


@pytest.mark.slow  # a killed collection process
def test_collection_resumes_after_a_kill(tmp_path):
    out = tmp_path / "killed"
    n = 16
    script = (f"import sys; sys.path.insert(0, {str(Path(__file__).parents[1])!r})\n"
              "import cosmos_sim\nfrom twins import pointmass\npointmass.register()\n"
              "from cosmos_sim.data import CollectConfig, collect\n"
              f"collect(CollectConfig(world={WORLD!r}, policy='random', image_size=32, episodes={n}, "
              f"shard_mb=0.005), {str(out)!r}, progress=False)\n")
    proc = subprocess.Popen([sys.executable, "-c", script])
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            if len(json.loads((out / "manifest.json").read_text())["shards"]) >= 2:
                break
        except (FileNotFoundError, ValueError):
            pass
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert sum(s["episodes"] for s in read_manifest(out)["shards"]) < n
    assert subprocess.run([sys.executable, "-c", script]).returncode == 0
    seeds = [s for shard in read_manifest(out)["shards"] for s in shard["seeds"]]
    assert sorted(seeds) == list(range(n))


# --- the learned twin ----------------------------------------------------------------------------------
def test_twin_has_the_source_spaces_and_passes_the_checkers(twin):
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    run, _ = twin
    env = gym.make("cosmos_sim/Learned-v0", model=run)
    src = gym.make(ID)
    assert env.observation_space == src.observation_space and env.action_space == src.action_space
    check_env(env.unwrapped, skip_render_check=True)
    sb3_check_env(env.unwrapped)
    both = gym.make("cosmos_sim/Learned-v0", model=run, obs_mode="both", render_mode="rgb_array")
    check_env(both.unwrapped)
    obs, info = both.reset(seed=1)
    assert obs["pixels"].shape == (32, 32, 3) and obs["state"].shape == (4,)
    assert both.render().shape == (32, 32, 3) and "pixels" in info


def test_twin_starts_like_the_source_and_repeats_itself(twin):
    run, _ = twin
    env = gym.make("cosmos_sim/Learned-v0", model=run)
    first, _ = env.reset(seed=5)
    src_first, _ = gym.make(ID).reset(seed=5)
    assert first.dtype == src_first.dtype and np.allclose(first, src_first, atol=1e-6)
    acts = [np.array([1.5, -0.5], np.float32), np.array([-2.0, 2.0], np.float32)]
    a = [env.step(x) for x in acts]
    env.reset(seed=5)
    b = [env.step(x) for x in acts]
    for x, y in zip(a, b, strict=True):
        assert np.array_equal(x[0], y[0]) and x[1] == y[1]


def test_a_policy_for_the_source_env_runs_on_the_twin_unchanged(twin):
    run, _ = twin
    env = gym.make("cosmos_sim/Learned-v0", model=run)
    obs, _ = env.reset(seed=0)
    total, steps = 0.0, 0
    for _ in range(40):
        obs, r, term, trunc, info = env.step(toward_origin(obs))
        total, steps = total + r, steps + 1
        assert isinstance(info["success"], bool) and np.isfinite(r)
        if term or trunc:
            break
    assert steps >= 1 and np.isfinite(total)


def test_vector_twin_steps_a_batch(twin):
    run, _ = twin
    envs = gym.make_vec("cosmos_sim/Learned-v0", num_envs=3, model=run)
    obs, _ = envs.reset(seed=0)
    assert obs.shape == (3, 4) and obs.dtype == np.float64
    single, _ = gym.make("cosmos_sim/Learned-v0", model=run).reset(seed=1)
    assert np.allclose(obs[1], single)  # env i starts from seed + i
    obs, rew, term, trunc, info = envs.step(envs.action_space.sample())
    assert rew.shape == (3,) and term.dtype == bool and info["success"].shape == (3,)
    with pytest.raises(ActionError):
        envs.step(np.full((3, 2), np.nan))


def test_reward_head_beats_a_constant_on_held_out_steps(twin):
    from cosmos_sim.world_model import WorldModel

    run, _ = twin
    m = WorldModel.load(run / "world_model.safetensors").info["task_metrics"]
    assert m["steps"] > 0
    below("reward MAE / a constant's", m["reward_mae"] / m["reward_mae_constant"], 0.5)
    above("reward correlation", m["reward_corr"], 0.9)


def test_compare_env_writes_the_report(twin, tmp_path):
    from cosmos_sim.evaluation.compare_env import EnvCompareConfig, compare_env

    run, _ = twin
    cfg = EnvCompareConfig(env=ID, policies=("random", "twins.test_twins:toward_origin"), episodes=4,
                           open_loop_episodes=2, horizon=6, videos=1, device="cpu")
    r = compare_env(cfg, run, tmp_path, progress=False)
    assert [row["name"] for row in r["ranking"]["rows"]] == ["random", "twins.test_twins:toward_origin"]
    assert r["ranking"]["rows"][1]["env_return"] > r["ranking"]["rows"][0]["env_return"]
    assert r["open_loop"]["reward_mae_per_step"] >= 0 and len(r["open_loop"]["steps"]) == 6
    for f in ("report.md", "report.json", "horizon.png", "ranking.png", "episode0_seed0.mp4"):
        assert (tmp_path / f).is_file()


def test_checkpoint_ladders_expand_in_training_order(tmp_path):
    from cosmos_sim.evaluation.compare_env import expand_env_policies, short_name

    for step in (200, 100):
        (tmp_path / "ppo" / "checkpoints" / f"step_{step:09d}").mkdir(parents=True)
    specs = expand_env_policies(f"random,{tmp_path / 'ppo' / 'checkpoints'}")
    assert [short_name(s) for s in specs] == ["random", "ppo@100", "ppo@200"]


# --- bad input -----------------------------------------------------------------------------------------
def test_unregistered_env_lists_close_matches():
    with pytest.raises(SourceEnvError, match="PointMass-v0"):
        CollectConfig(world="env:cosmos_test/PointMas-v0", policy="random")


@pytest.mark.parametrize("name, match", [("PointMassDiscrete", "Discrete"), ("PointMassImage", "image observation"),
                                         ("PointMassNoRender", "rgb_array"), ("PointMassWide", "32x48")])
def test_unsupported_envs_fail_before_any_work(name, match, tmp_path):
    with pytest.raises(SourceEnvError, match=match):
        CollectConfig(world=f"env:cosmos_test/{name}-v0", policy="random", image_size=32)
    assert not any(tmp_path.iterdir())


def test_expert_policies_need_a_world(tmp_path):
    with pytest.raises(ValueError, match="scripted expert"):
        CollectConfig(world=WORLD, policy="mix")


def test_a_model_for_another_env_or_kwargs_is_refused_first(twin, tmp_path):
    from cosmos_sim.evaluation.compare_env import EnvCompareConfig, compare_env

    run, _ = twin
    with pytest.raises(ConfigMismatchError, match="PointMassFixed"):
        gym.make("cosmos_sim/Learned-v0", model=run, env="cosmos_test/PointMassFixed-v0")
    with pytest.raises(ConfigMismatchError, match="gain"):
        compare_env(EnvCompareConfig(env=ID, env_kwargs='{"gain": 0.2}'), run, tmp_path / "r", progress=False)
    assert not (tmp_path / "r").exists()
    with pytest.raises(ConfigMismatchError):
        gym.make("cosmos_sim/Push-v0", backend="world_model", model=run)


def test_learned_id_needs_a_twin_model(tiny_world_model):
    run, _ = tiny_world_model
    with pytest.raises(ConfigMismatchError, match="cosmos_sim world"):
        gym.make("cosmos_sim/Learned-v0", model=run)
    with pytest.raises(ValueError, match="model=RUN"):
        gym.make("cosmos_sim/Learned-v0")


def test_cli_errors_are_one_line(capsys):
    from cosmos_sim.cli import main

    assert main(["collect", "--env", "cosmos_test/PointMas-v0", "--episodes", "1", "--out", "x"]) == 1
    err = capsys.readouterr().err
    assert "not registered" in err and "Traceback" not in err


def test_source_env_refuses_cameras():
    with pytest.raises(SourceEnvError, match="camera"):
        SourceEnv(WORLD, camera="random")


def test_learned_env_refuses_bad_actions(twin):
    run, _ = twin
    env = gym.make("cosmos_sim/Learned-v0", model=run)
    env.reset(seed=0)
    with pytest.raises(ActionError):
        env.unwrapped.step(np.array([np.inf, 0.0]))
    with pytest.raises(ActionError):
        env.unwrapped.step(np.zeros(3))
    torch.set_grad_enabled(True)


def test_twin_resets_from_a_dataset(twin):
    run, data = twin
    env = gym.make("cosmos_sim/Learned-v0", model=run, reset_source=str(data))
    obs, _ = env.reset(seed=0)
    starts = [EpisodeDataset(data)[i]["states"][0] for i in range(len(EpisodeDataset(data)))]
    assert any(np.allclose(obs, s, atol=1e-6) for s in starts)


def test_cli_collects_and_compares_an_env(twin, tmp_path, capsys):
    from cosmos_sim.cli import main

    run, _ = twin
    assert main(["collect", "--env", ID, "--env-kwargs", "{}", "--episodes", "2", "--image-size", "32",
                 "--out", str(tmp_path / "d")]) == 0
    assert read_manifest(tmp_path / "d")["collection"]["policy"] == "random,explore"  # no expert: noise by default
    assert main(["compare", "--env", ID, "--model", str(run), "--policies", "random,explore", "--episodes", "2",
                 "--open-loop-episodes", "1", "--horizon", "4", "--videos", "0", "--out", str(tmp_path / "r"),
                 "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "Spearman" in out and (tmp_path / "r" / "report.md").is_file()
    assert main(["compare", "--env", "Reacher-v5", "--model", str(run), "--out", str(tmp_path / "x")]) == 1
    assert "world model is for" in capsys.readouterr().err


@pytest.mark.slow  # collects and trains three tiny twins
@pytest.mark.parametrize("env_id", ["InvertedPendulum-v5", "Reacher-v5", "Pusher-v5"])
def test_gymnasium_mujoco_envs_get_a_twin_through_the_cli(env_id, tmp_path, capsys):
    """Gymnasium's own MuJoCo envs: collect and train with the public CLI (tiny presets), then both env
    checkers pass on the twin and its spaces are the source env's."""
    import warnings

    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    from cosmos_sim.cli import main

    data, run = tmp_path / "data", tmp_path / "run"
    assert main(["collect", "--env", env_id, "--episodes", "3", "--image-size", "32", "--out", str(data)]) == 0
    assert main(["train", "tokenizer", "--data", str(data), "--out", str(run / "tokenizer"), "--preset", "tiny",
                 "--steps", "5", "--batch-size", "4"]) == 0
    assert main(["train", "--data", str(data), "--out", str(run), "--preset", "tiny", "--steps", "5",
                 "--batch-size", "4", "--resume"]) == 0
    assert "twin recipe:" in capsys.readouterr().out  # what the recipe decided, printed ...
    from cosmos_sim.world_model import WorldModel

    recipe = WorldModel.load(run / "world_model.safetensors").info["recipe"]  # ... and recorded with the model
    assert recipe["used"]["steps"] == recipe["rule"]["steps"] == 40 and recipe["facts"]["episodes"] == 3
    twin, src = gym.make("cosmos_sim/Learned-v0", model=run), gym.make(env_id)
    assert twin.observation_space == src.observation_space and twin.action_space == src.action_space
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_env(twin.unwrapped, skip_render_check=True)
        sb3_check_env(twin.unwrapped)
    first, _ = twin.reset(seed=3)
    assert np.allclose(first, src.reset(seed=3)[0], atol=1e-5)


def test_vector_twin_resets_only_the_masked_envs(twin):
    """`reset_mask` (what SB3VecEnv's same-step autoreset uses) resets the masked twins alone."""
    run, _ = twin
    envs = gym.make_vec("cosmos_sim/Learned-v0", num_envs=3, model=run)
    envs.reset(seed=0)
    obs, *_ = envs.step(np.full((3, 2), 1.5, np.float32))
    again, _ = envs.reset(options={"reset_mask": np.array([True, False, False])})
    assert np.array_equal(again[1:], obs[1:]) and not np.array_equal(again[0], obs[0])


def test_twin_classes_take_a_config_and_shape_like_any_learned_env(twin):
    """LearnedEnv(config) is what gym.make builds; keywords a twin cannot use are refused by name; the shaping
    wrappers work on twins as on any env that reports info["uncertainty"]."""
    from cosmos_sim.envs.learned_config import LearnedEnvConfig, UnknownKeywordError
    from cosmos_sim.envs.learned_env import LearnedEnv, LearnedVectorEnv

    run, _ = twin
    env, made = LearnedEnv(LearnedEnvConfig(model=run)), gym.make("cosmos_sim/Learned-v0", model=run)
    assert env.observation_space == made.observation_space and env.obs_mode == "state"
    assert np.array_equal(env.reset(seed=2)[0], made.reset(seed=2)[0])
    with pytest.raises(UnknownKeywordError, match="camera does not apply"):
        gym.make("cosmos_sim/Learned-v0", model=run, camera="random")
    with pytest.raises(UnknownKeywordError, match="array_type='torch'"):
        gym.make_vec("cosmos_sim/Learned-v0", num_envs=2, model=run, array_type="torch")
    envs = gym.make_vec("cosmos_sim/Learned-v0", num_envs=3, model=run, uncertainty_penalty=1.0,
                        halt_uncertainty=1e-9)
    assert isinstance(envs.unwrapped, LearnedVectorEnv)
    envs.reset(seed=0)
    _, reward, term, trunc, info = envs.step(np.zeros((3, 2), np.float32))
    halted = (info["uncertainty"] > 1e-9) & ~term
    assert reward.dtype == np.float64 and halted.any() and np.array_equal(info["halted"], halted)
    assert trunc[halted].all()
