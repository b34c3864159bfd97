"""PPO learns trivial worlds (numpy and torch vector envs), handles NEXT_STEP autoreset, and saves loadable policies."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces
from gymnasium.vector import AutoresetMode

from cosmos_sim.errors import ConfigMismatchError
from cosmos_sim.policies.ppo import ActorCritic, PPOConfig, compute_gae, train_ppo
from cosmos_sim.policies.saved import load_policy

from margins import above, below

pytestmark = pytest.mark.slow  # trains policies

TARGET, HORIZON = 0.5, 20


class PointEnv(gym.Env):
    """1-D point: x += 0.2 a, reward -|x - 0.5|, truncated after 20 steps; observes (x, t / 20)."""

    observation_space = spaces.Dict(state=spaces.Box(-np.inf, np.inf, (2,), np.float32))
    action_space = spaces.Box(-1.0, 1.0, (1,), np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.x, self.t = float(self.np_random.uniform(-1, 1)), 0
        return self._obs(), {}

    def step(self, action):
        self.x = float(np.clip(self.x + 0.2 * float(np.clip(action[0], -1, 1)), -1, 1))
        self.t += 1
        return self._obs(), -abs(self.x - TARGET), False, self.t >= HORIZON, {}

    def _obs(self):
        return {"state": np.array([self.x, self.t / HORIZON], np.float32)}


class TorchPointVecEnv(gym.vector.VectorEnv):
    """The same point, batched in torch, NEXT_STEP autoreset; terminates on reaching the target."""

    metadata = {"autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(self, num_envs=8):
        self.num_envs = num_envs
        self.single_observation_space = PointEnv.observation_space
        self.single_action_space = PointEnv.action_space
        self.observation_space = gym.vector.utils.batch_space(self.single_observation_space, num_envs)
        self.action_space = gym.vector.utils.batch_space(self.single_action_space, num_envs)
        self.x, self.t = torch.zeros(num_envs), torch.zeros(num_envs)
        self.done = torch.zeros(num_envs, dtype=torch.bool)
        self.gen = torch.Generator()

    def reset(self, *, seed=None, options=None):
        if seed is not None:
            self.gen.manual_seed(seed)
        self._start(torch.ones(self.num_envs, dtype=torch.bool))
        return self._obs(), {}

    def step(self, actions):
        assert isinstance(actions, torch.Tensor)
        a = actions[:, 0].clamp(-1, 1)
        x = (self.x + 0.2 * a).clamp(-1, 1)
        self.x = torch.where(self.done, self.x, x)
        self.t = torch.where(self.done, self.t, self.t + 1)
        reward = torch.where(self.done, 0.0, -(self.x - TARGET).abs())
        terminated = ~self.done & ((self.x - TARGET).abs() < 0.05)
        truncated = ~self.done & ~terminated & (self.t >= HORIZON)
        self._start(self.done)
        self.done = terminated | truncated
        return self._obs(), reward, terminated, truncated, {}

    def _start(self, mask):
        fresh = torch.rand(self.num_envs, generator=self.gen) * 2 - 1
        self.x = torch.where(mask, fresh, self.x)
        self.t = torch.where(mask, 0.0, self.t)
        self.done = self.done & ~mask

    def _obs(self):
        return {"state": torch.stack([self.x, self.t / HORIZON], 1)}


def point_envs(n=8):
    return gym.vector.SyncVectorEnv([PointEnv for _ in range(n)])


def random_return(envs, episodes=40, seed=0):
    rng = np.random.default_rng(seed)
    envs.reset(seed=seed)
    returns, run, autoreset = [], np.zeros(envs.num_envs), np.zeros(envs.num_envs, bool)
    while len(returns) < episodes:
        a = rng.uniform(-1, 1, (envs.num_envs, 1)).astype(np.float32)
        _, r, te, tr, _ = envs.step(a if not isinstance(envs, TorchPointVecEnv) else torch.from_numpy(a))
        r, done = np.asarray(r, float), np.asarray(te) | np.asarray(tr)
        run += np.where(autoreset, 0, r)
        returns += run[done].tolist()
        run[done] = 0
        autoreset = done
    return float(np.mean(returns))


def test_gae_does_not_leak_across_autoreset():
    # one env: steps 0-1 episode A (truncated at 1), step 2 the autoreset step, steps 3-4 episode B
    rewards = torch.tensor([1.0, 1.0, 99.0, 10.0, 10.0])[:, None]
    values = torch.tensor([0.5, 0.5, 3.0, 0.0, 0.0])[:, None]
    trunc = torch.tensor([False, True, False, False, False])[:, None]
    term = torch.zeros_like(trunc)
    valid = torch.tensor([True, True, False, True, True])[:, None]
    adv, ret = compute_gae(rewards, values, torch.zeros(1), term, trunc, valid, gamma=0.5, lam=1.0)
    assert adv[2, 0] == 0  # the autoreset step is no transition
    assert adv[1, 0] == pytest.approx(1.0 + 0.5 * 3.0 - 0.5)  # truncated: bootstraps from V(final obs) only
    assert adv[0, 0] == pytest.approx(1.0 + 0.5 * 0.5 - 0.5 + 0.5 * adv[1, 0])
    assert adv[3, 0] == pytest.approx(10.0 + 0.5 * 10.0)  # episode B knows nothing of A
    # terminated instead: no bootstrap at all
    adv, _ = compute_gae(rewards, values, torch.zeros(1), trunc, term, valid, gamma=0.5, lam=1.0)
    assert adv[1, 0] == pytest.approx(1.0 - 0.5)


def test_ppo_improves_on_numpy_vector_env():
    envs = point_envs()
    baseline = random_return(envs)
    r = train_ppo(envs, PPOConfig(total_steps=12_288, num_steps=64, lr=3e-3, seed=0), "state", progress=False)
    envs.close()
    ret = r["episode_returns"]
    first, last = np.mean(ret[:16]), np.mean(ret[-16:])
    print(f"numpy point env: random {baseline:.2f}, first {first:.2f}, last {last:.2f}, {r['wall_s']:.1f}s")
    assert all(n == HORIZON for n in r["episode_lengths"])
    assert r["steps"] == 12_288 and np.isfinite(ret).all()
    above("return gain over the first episodes", last - first, 3)
    above("return gain over random", last - baseline, 3)


def test_ppo_improves_on_torch_vector_env():
    envs = TorchPointVecEnv()
    baseline = random_return(envs)
    r = train_ppo(envs, PPOConfig(total_steps=12_288, num_steps=64, lr=3e-3, seed=0), "state", progress=False)
    ret = r["episode_returns"]
    first, last = np.mean(ret[:16]), np.mean(ret[-16:])
    print(f"torch point env: random {baseline:.2f}, first {first:.2f}, last {last:.2f}, {r['wall_s']:.1f}s")
    above("return gain over the first episodes", last - first, 2)
    above("return gain over random", last - baseline, 2)
    below("last episodes' length", np.mean(r["episode_lengths"][-16:]), HORIZON)  # reaches (ends at) the target
    obs = {"state": torch.tensor([[-0.5, 0.0], [1.0, 0.0]])}
    a = r["policy"].act(obs)
    assert isinstance(a, torch.Tensor) and a[0, 0] > 0 > a[1, 0]  # moves towards the target


def test_saved_policy_round_trip_and_mismatch(tmp_path):
    envs = point_envs(2)
    cfg = PPOConfig(total_steps=256, num_steps=32, seed=1)
    r = train_ppo(envs, cfg, "state", out=tmp_path / "run", world="Push", progress=False)
    envs.close()
    assert r["policy_path"] == str(tmp_path / "run" / "policy.safetensors")
    policy = load_policy(r["policy_path"], world="Push", obs_mode="state")
    assert isinstance(policy.net, ActorCritic) and policy.kind == "ppo"
    obs = {"state": np.random.default_rng(0).normal(size=(32, 2)).astype(np.float32)}
    want = r["policy"].net.act_tensor({"state": torch.from_numpy(obs["state"])}).clamp(-1, 1).detach().numpy()
    assert np.array_equal(policy.act(obs), want)
    assert np.array_equal(policy.act(obs), r["policy"].act(obs))
    with pytest.raises(ConfigMismatchError, match="world: policy has 'Push', caller has 'Reach'"):
        load_policy(r["policy_path"], world="Reach")
    with pytest.raises(ConfigMismatchError, match="obs_mode: policy has 'state', caller has 'pixels'"):
        load_policy(r["policy_path"], obs_mode="pixels")
    from cosmos_sim.training.checkpoint import read_checkpoint

    _, meta = read_checkpoint(r["policy_path"])
    assert PPOConfig.from_dict(meta["info"]["ppo_config"]) == cfg


def test_bad_envs_are_refused():
    envs = point_envs(1)
    with pytest.raises(ValueError, match="pixels"):
        train_ppo(envs, PPOConfig(total_steps=32, num_steps=32), "pixels", progress=False)
    with pytest.raises(ValueError, match="world="):
        train_ppo(envs, PPOConfig(total_steps=32, num_steps=32), "state", out="unused", progress=False)
    envs.close()
    same_step = gym.vector.SyncVectorEnv([PointEnv], autoreset_mode=AutoresetMode.SAME_STEP)
    with pytest.raises(ValueError, match="NEXT_STEP"):
        train_ppo(same_step, PPOConfig(total_steps=32, num_steps=32), "state", progress=False)
    same_step.close()


def test_ppo_runs_on_learned_world(tiny_world_model):
    from cosmos_sim.envs.world_model_env import LearnedEnvConfig, WorldModelVectorEnv

    run_dir, _ = tiny_world_model
    envs = WorldModelVectorEnv(LearnedEnvConfig(world="push", model=run_dir, obs_mode="state", array_type="torch",
                                                device="cpu"), num_envs=8)
    r = train_ppo(envs, PPOConfig(total_steps=1024, num_steps=128, seed=0), "state", progress=False)
    envs.close()
    assert r["steps"] == 1024 and r["policy"].world == "Push"
    assert len(r["episode_returns"]) >= 8 and all(0 < n <= 100 for n in r["episode_lengths"])
    assert all(np.isfinite(h["v_loss"]) and np.isfinite(h["pg_loss"]) for h in r["history"])
    assert np.isfinite(r["episode_returns"]).all()
    a = r["policy"].act({"state": torch.zeros(3, r["net_config"]["state_dim"])})
    assert a.shape == (3, 2) and bool(torch.isfinite(a).all())


def test_cli_train_policy_ppo_on_world_model_then_evaluate(tiny_world_model, tmp_path, capsys):
    from cosmos_sim.cli import main

    out = tmp_path / "ppo"
    assert main(["train-policy", "--algo", "ppo", "--backend", "world_model", "--model", str(tiny_world_model[0]),
                 "--num-envs", "4", "--steps", "1024", "--save-every", "512", "--out", str(out), "--no-progress"]) == 0
    assert (out / "policy.safetensors").is_file()
    ladder = sorted(p.name for p in (out / "checkpoints").iterdir())  # --save-every: policies along the run
    assert ladder == ["step_000000512", "step_000001024"]
    assert main(["evaluate", "--backend", "mujoco", "--policy", str(out / "checkpoints" / ladder[0]),
                 "--episodes", "1"]) == 0
    assert main(["evaluate", "--backend", "mujoco", "--policy", str(out), "--episodes", "2"]) == 0
    assert str(out) in capsys.readouterr().out
    assert main(["train-policy", "--algo", "bc", "--out", str(tmp_path / "bc")]) == 1
    assert "--data" in capsys.readouterr().err
    assert main(["train-policy", "--algo", "ppo", "--save-every", "0", "--out", str(tmp_path / "x")]) == 1
    assert "save_every must be >= 1" in capsys.readouterr().err


def test_saved_policy_in_a_dotted_run_directory(tmp_path):
    """A run name with a dot ("ppo.v2") is a directory, and loads back exactly, normalizer included."""
    import torch

    from cosmos_sim.policies.ppo import KIND, ActorCritic
    from cosmos_sim.policies.saved import load_policy, save_policy

    cfg = {"obs_mode": "state", "state_dim": 12, "image_size": None, "action_dim": 2, "hidden": 16}
    net = ActorCritic(cfg)
    net.state_norm.update(torch.randn(64, 12) * 3 + 1)
    path = save_policy(tmp_path / "ppo.v2", net, KIND, cfg, world="Push", obs_mode="state")
    assert path.parent.is_dir() and path.parent.name == "ppo.v2"
    obs = {"state": torch.randn(5, 12).numpy()}
    a = load_policy(tmp_path / "ppo.v2", world="Push", obs_mode="state").act(obs)
    want = net.act_tensor({"state": torch.as_tensor(obs["state"])}).clamp(-1, 1).detach().numpy()
    assert (abs(a - want) < 1e-6).all()


def test_ppo_writes_tensorboard_events_with_cleanrl_tags(tmp_path):
    from cosmos_sim.training.events import read_scalars

    envs = point_envs(2)
    train_ppo(envs, PPOConfig(total_steps=256, num_steps=32, seed=1), "state", out=tmp_path / "run", world="Push",
              progress=False)
    envs.close()
    tags = read_scalars(tmp_path / "run" / "tb")
    for tag in ("losses/value_loss", "losses/policy_loss", "losses/entropy", "charts/learning_rate"):
        assert [s for s, _ in tags[tag]] == [64 * i for i in range(1, 5)], tag
    assert "charts/episodic_return" in tags or "charts/episodic_length" not in tags


def test_track_sends_the_tensorboard_logs_to_wandb(tiny_world_model, tmp_path, capsys, monkeypatch):
    """--track: one W&B run around the command, mirroring its TensorBoard event files (a stand-in wandb
    module records the calls: nothing leaves the machine); without wandb, one line naming the extra."""
    import sys
    import types

    from cosmos_sim.cli import main

    calls = []

    class Run:
        def finish(self):
            calls.append("finish")

    fake = types.ModuleType("wandb")
    fake.init = lambda **kw: calls.append(kw) or Run()
    monkeypatch.setitem(sys.modules, "wandb", fake)
    argv = ["train-policy", "--algo", "ppo", "--backend", "world_model", "--model", str(tiny_world_model[0]),
            "--num-envs", "4", "--steps", "256", "--no-progress"]
    assert main([*argv, "--out", str(tmp_path / "tracked"), "--track", "my-project"]) == 0
    init, finish = calls
    assert init["project"] == "my-project" and init["sync_tensorboard"] is True and init["name"] == "tracked"
    assert init["config"]["algo"] == "ppo" and finish == "finish"
    assert list((tmp_path / "tracked" / "tb").glob("events.out.tfevents.*"))  # what W&B mirrors
    # The saved policy acts on the bare state array of obs_mode="state" envs, batched or through run_episode.

    from cosmos_sim.policies.rollout import run_episode
    from cosmos_sim.policies.saved import load_policy

    policy = load_policy(tmp_path / "tracked", world="Push", obs_mode="state")
    env = gym.make("cosmos_sim/Push-v0", backend="mujoco", obs_mode="state", max_episode_steps=5)
    obs, _ = env.reset(seed=0)
    assert isinstance(obs, np.ndarray) and policy.act(obs[None]).shape == (1, 2)
    assert run_episode(env, policy, seed=0).length == 5
    env.close()
    monkeypatch.setitem(sys.modules, "wandb", None)  # not installed: `import wandb` raises ImportError
    capsys.readouterr()
    assert main([*argv, "--out", str(tmp_path / "untracked"), "--track"]) == 1
    assert "pip install 'cosmos_sim[wandb]'" in capsys.readouterr().err
