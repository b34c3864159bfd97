"""Dyna / MBPO for PPO in the learned world, in one file: collect real steps, refit the state model, train
the policy in imagination, measure it in physics; repeat.

Why: PPO trained in a fixed learned world finds motions that work in the model and not in physics (the
exploitation gap). The cures combined here are MBPO's (an ensemble state model, short imagined rollouts
branched from real states, the model refit on the policy's own real rollouts), MOPO's (reward minus
lambda x the members' disagreement) and MOReL's (halt an imagined episode where they disagree). Each is a
`DynaConfig` switch, so an ablation is a list of configs (benchmarks/imagination.py).

Only the state model is learned and refit here: a state-observing policy in the learned world sees the
state model alone (pixels are not decoded), so the round's physics steps are stored as states and actions
(`round_<r>/real.safetensors`), not frames. The world model passed in lends its normalization statistics
(and, when `fresh_state_model` is off, its state head to fine-tune); with `fresh_state_model` (default) the
state model learns from the loop's own physics steps only, so every physics step the policy cost is
counted in `real_steps`.

A run directory holds `config.json`, `round_<r>/` (real data, world model, policy) and `dyna_log.json`
(one record per finished round: physics and imagined steps, success in the learned world and in physics,
the exploitation gap) plus `dyna.png`. Re-running the same command after a kill resumes after the last
finished round; every round is seeded, so a resumed run repeats what the killed one would have done.
Evaluation episodes (seeds `eval_seed`..) measure and are not counted as training steps.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, fields, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cosmos_sim.config import arg
from cosmos_sim.device import resolve_device
from cosmos_sim.errors import InputError
from cosmos_sim.policies.base import obs_dict

LOG = "dyna_log.json"
COLLECT_SEED = 5_000_000  # the rounds' physics episodes use seeds from here (eval seeds are far below)


# --- 1. config ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DynaConfig:
    world: str = arg("push", "world name")
    rounds: int = arg(4, "rounds of collect -> refit -> imagine")
    real_steps: int = arg(15_000, "physics steps collected per round (whole episodes, at least this many)")
    initial_policy: str = arg("mix", "who collects round 0's steps (a policy name, drawn per episode as datasets "
                                     "are collected; later rounds: the PPO policy)")
    imagined_steps: int = arg(200_000, "PPO env steps in the learned world per round")
    members: int = arg(5, "state-model ensemble members (fresh_state_model)")
    state_steps: int = arg(1500, "state-model updates per round, on every real step so far")
    state_horizon: int = 6  # the state model learns from its own rollouts this long
    fresh_state_model: bool = arg(True, "learn the state model from the loop's physics steps only")
    branch: bool = arg(False, "imagined episodes start at any real step so far (MBPO), else at physics resets "
                              "(measured better on Push: docs/benchmarks.md)")
    branch_steps: int = arg(20, "imagined episode length when branching")
    uncertainty_penalty: float = arg(0.0, "MOPO: reward minus this x the members' disagreement")
    halt_uncertainty: float | str | None = arg(None, "MOReL: truncate an imagined episode past this disagreement; "
                                                     "'data': past the largest one-step disagreement on the real steps")
    num_envs: int = arg(64, "imagined envs stepped together")
    lr: float | None = arg(None, "PPO learning rate (none: PPOConfig.lr)")
    eval_episodes: int = arg(30, "episodes per backend measuring each round's policy")
    eval_seed: int = 1000
    seed: int = arg(0, "seed of collection, the state model, PPO and the envs")

    def __post_init__(self):
        from cosmos_sim.worlds import get_world

        object.__setattr__(self, "world", get_world(self.world).name)
        for name in ("rounds", "real_steps", "imagined_steps", "members", "state_horizon", "branch_steps",
                     "num_envs", "eval_episodes"):
            if int(getattr(self, name)) < 1:
                raise InputError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.state_steps < 0:
            raise InputError(f"state_steps must be >= 0, got {self.state_steps}")
        if not np.isfinite(self.uncertainty_penalty) or self.uncertainty_penalty < 0:
            raise InputError(f"uncertainty_penalty must be a finite number >= 0, got {self.uncertainty_penalty}")
        h = self.halt_uncertainty
        if h is not None and h != "data" and not (isinstance(h, (int, float)) and h > 0):
            raise InputError(f"halt_uncertainty must be > 0, 'data' or None, got {h!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> DynaConfig:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


# --- 2. real steps ----------------------------------------------------------------------------------------
class SampledPolicy:
    """A PPO network acting as it trains: actions drawn from its Gaussian (clipped), so the real data covers
    what PPO will try, not only its mean action."""

    def __init__(self, net, generator: torch.Generator):
        self.net, self.generator, self.name = net.eval(), generator, "ppo (sampled)"

    @torch.no_grad()
    def act(self, obs: dict) -> np.ndarray:
        s = {"state": torch.as_tensor(np.asarray(obs_dict(obs)["state"]), dtype=torch.float32)}
        mean = self.net.act_tensor(s)
        std = self.net.actor_log_std.exp().expand_as(mean)
        a = mean + std * torch.randn(mean.shape, generator=self.generator)
        return a.clamp(-1, 1).numpy().astype(np.float32)

    def reset(self, mask: np.ndarray | None = None) -> None:
        return None


def initial_policy(name: str, world: str, seed: int):
    """Round 0's policy for the episode of `seed`, drawn as dataset collection draws it: `mix` picks one
    policy per episode, and an expert's skill is uniform in [0, 1]."""
    from cosmos_sim.policies.registry import make_policy

    return make_policy(name, world, seed=seed, skill=float(np.random.default_rng([seed, 3]).uniform(0.0, 1.0)))


def collect_real(world: str, policy, steps: int, seed: int) -> dict[str, np.ndarray]:
    """Whole MuJoCo episodes (seeds `seed`, `seed`+1, ...) until at least `steps` steps, acted by `policy`
    (a Policy, or a function of the episode's seed giving one, as `mix` draws per episode): flat states
    [E + steps', S], actions [steps', A] and `offsets` [E + 1] (episode e's actions are
    offsets[e]:offsets[e+1]; its states the same range shifted by e)."""
    from cosmos_sim.envs.physics import make_physics_env
    from cosmos_sim.policies.rollout import run_episode

    env = make_physics_env(world, backend="mujoco", obs_mode="state")
    states, actions, n, i = [], [], 0, 0
    try:
        while n < steps:
            ep = run_episode(env, policy(seed + i) if callable(policy) else policy, seed + i)
            states.append(ep.observations["state"].astype(np.float32))
            actions.append(np.clip(ep.actions, -1, 1).astype(np.float32))
            n += len(actions[-1])
            i += 1
    finally:
        env.close()
    return {"states": np.concatenate(states), "actions": np.concatenate(actions),
            "offsets": np.cumsum([0] + [len(a) for a in actions]).astype(np.int64)}


def real_cache(rounds: list[dict[str, np.ndarray]], model) -> dict[str, torch.Tensor]:
    """Every round's real steps as one cache of normalized states (`state_cache`), episode after episode."""
    from cosmos_sim.dynamics.train import real_state_cache

    return real_state_cache(model, np.concatenate([r["states"] for r in rounds]),
                            np.concatenate([r["actions"] for r in rounds]),
                            [int(n) for r in rounds for n in np.diff(r["offsets"])])


class RecordedStates:
    """Reset source for state-only learned envs: any real step recorded so far (MBPO's branch points)."""

    def __init__(self, states: np.ndarray, world, image_size: int):
        self.states, self.camera = states, world.default_camera
        self.frame = np.zeros((image_size, image_size, 3), np.uint8)  # never shown: the env observes the state

    def sample(self, rng: np.random.Generator, options: dict | None):
        return self.frame, self.states[int(rng.integers(len(self.states)))], self.camera

    def close(self) -> None:
        return None


# --- 3. one round ---------------------------------------------------------------------------------------
def fit_round_model(config: DynaConfig, model, rounds: list[dict], seed: int, device: str, progress: bool):
    """The world model with its state model (re)fit on every round's real steps."""
    from cosmos_sim.dynamics.train import fit_state_model, state_windows, step_frames
    from cosmos_sim.world_model import StateHead

    cache = real_cache(rounds, model)
    episodes = list(range(len(cache["step_offsets"]) - 1))
    head = model.state_head
    if config.fresh_state_model and len(rounds) == 1:  # round 0: a new ensemble, scaled from the loop's data
        c = head.config
        torch.manual_seed(seed)  # the members' initial weights
        head = StateHead(c["latent_channels"], c["latent_size"], c["state_dim"], c["action_dim"], c["width"],
                         c["hidden"], c["gate"], members=config.members)
        for part in ("trunk", "out"):  # the latent reader is not this loop's business: keep the model's
            getattr(head, part).load_state_dict(getattr(model.state_head, part).state_dict())
        steps = step_frames(cache, episodes)
        delta = cache["states"][steps + 1] - cache["states"][steps]
        head.set_statistics({"delta_scale": delta.std(0).clamp_min(1e-4)}, cache["states"], steps)
    else:
        import copy

        head = copy.deepcopy(head).requires_grad_(True)  # loaded or served models come frozen
    if config.state_steps:
        fit_state_model(head, state_windows(cache, episodes, config.state_horizon), config.state_steps, seed=seed,
                        device=device, progress=progress)
    return model.with_state_head(head.to(model.device).eval())


@torch.no_grad()
def data_disagreement(model, rounds: list[dict]) -> dict:
    """The ensemble's one-step disagreement on the real steps (as `info["uncertainty"]` measures it): the
    scale against which a penalty or a halting threshold means something."""
    from cosmos_sim.dynamics.train import step_frames

    head = model.state_head
    if getattr(head, "members", 1) < 2:
        return {}
    cache = real_cache(rounds, model)
    steps = step_frames(cache, list(range(len(cache["step_offsets"]) - 1)))
    s, a = cache["states"][steps].to(model.device), cache["actions"].to(model.device)
    u = head.forward_members(s, a).std(0).mean(-1).cpu().numpy()
    return {"median": float(np.median(u)), "p99": float(np.percentile(u, 99)), "max": float(u.max())}


def _evaluate(config: DynaConfig, model, policy_path: Path, device: str) -> dict:
    from cosmos_sim.evaluation.closed_loop import evaluate, exploitation_gap

    kw = {"episodes": config.eval_episodes, "seed": config.eval_seed, "device": device}
    phys = evaluate(config.world, "mujoco", str(policy_path), **kw)
    learned = evaluate(config.world, "world_model", str(policy_path), model=model, **kw)
    return {"mujoco": {k: phys[k] for k in ("success_rate", "return")},
            "world_model": {k: learned[k] for k in ("success_rate", "return")},
            "exploitation_gap": exploitation_gap(learned, phys, seed=config.eval_seed)}


# --- 4. the loop ----------------------------------------------------------------------------------------
def run_dyna(config: DynaConfig, model: Any, out: str | os.PathLike, device: str | None = None,
             progress: bool = True, log=print) -> dict:
    """Run (or resume) the loop in `out`; returns the log: the config and one record per round."""
    import gymnasium as gym

    from cosmos_sim.envs.registration import env_id
    from cosmos_sim.errors import ConfigMismatchError
    from cosmos_sim.evaluation.compare import load_checked_model
    from cosmos_sim.fileio import atomic_write_bytes, atomic_write_json
    from cosmos_sim.policies.ppo import PPOConfig, train_ppo
    from cosmos_sim.policies.saved import FILE, load_policy
    from cosmos_sim.training.checkpoint import read_checkpoint, write_checkpoint
    from cosmos_sim.world_model import WorldModel
    from cosmos_sim.worlds import get_world

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    dev = resolve_device(device)
    model = load_checked_model(model, config.world, dev)
    saved = out / "config.json"
    if saved.is_file() and json.loads(saved.read_text()) != json.loads(json.dumps(config.to_dict())):
        raise ConfigMismatchError(f"{out} holds a Dyna run with another config ({saved}); use a new --out")
    atomic_write_json(saved, config.to_dict())
    log_path = out / LOG
    record = json.loads(log_path.read_text()) if log_path.is_file() else {"config": config.to_dict(), "rounds": []}
    done = len(record["rounds"])
    rounds = [{k: v.numpy() for k, v in read_checkpoint(out / f"round_{r}" / "real.safetensors")[0].items()}
              for r in range(done)]
    net, return_norm = None, None
    if done:
        log(f"resuming after round {done - 1} of {config.rounds}")
        model = WorldModel.load(out / f"round_{done - 1}", device=dev)
        net = load_policy(out / f"round_{done - 1}", world=config.world, obs_mode="state").net
        return_norm = record["rounds"][-1].get("return_norm")
    ppo = PPOConfig(total_steps=config.imagined_steps, lr=config.lr or PPOConfig.lr, seed=config.seed)
    for r in range(done, config.rounds):
        t0 = time.perf_counter()
        rdir = out / f"round_{r}"
        seed = config.seed * 1000 + r
        if net is None:
            actor, collected_by = partial(initial_policy, config.initial_policy, config.world), config.initial_policy
        else:
            actor = SampledPolicy(net.cpu(), torch.Generator().manual_seed(seed))
            collected_by = actor.name
        real = collect_real(config.world, actor, config.real_steps, COLLECT_SEED + config.seed * 100_000 + r * 1000)
        write_checkpoint(rdir / "real.safetensors", {k: torch.from_numpy(v) for k, v in real.items()},
                         {"kind": "dyna_real_steps", "world": config.world, "round": r})
        rounds.append(real)
        t_collect = time.perf_counter() - t0
        model = fit_round_model(config, model, rounds, seed, dev, progress)
        model.save(rdir)
        t_fit = time.perf_counter() - t0 - t_collect
        u_data = data_disagreement(model, rounds)
        halt = u_data.get("max") if config.halt_uncertainty == "data" else config.halt_uncertainty
        kw: dict = {"backend": "world_model", "model": model, "obs_mode": "state", "array_type": "torch",
                    "device": dev, "uncertainty_penalty": config.uncertainty_penalty, "halt_uncertainty": halt}
        if config.branch:
            all_states = np.concatenate([x["states"] for x in rounds])
            kw |= {"reset_source": RecordedStates(all_states, get_world(config.world), model.image_size),
                   "max_episode_steps": config.branch_steps}
        envs = gym.make_vec(env_id(config.world), num_envs=config.num_envs, **kw)
        try:
            # one PPO run in parts: the learning rate anneals once over all rounds, the reward scale carries on
            res = train_ppo(envs, replace(ppo, seed=seed), "state", out=rdir, world=config.world, device=dev,
                            progress=progress, init=net, schedule=(r / config.rounds, (r + 1) / config.rounds),
                            return_norm=return_norm)
        finally:
            envs.close()
        net, return_norm = res["policy"].net, res["return_norm"]
        t_ppo = time.perf_counter() - t0 - t_collect - t_fit
        ev = _evaluate(config, model, rdir / FILE, dev)
        prev = record["rounds"][-1] if record["rounds"] else {"real_steps_total": 0, "imagined_steps_total": 0}
        rec = {"round": r, "real_steps": int(len(real["actions"])),
               "real_steps_total": prev["real_steps_total"] + int(len(real["actions"])),
               "imagined_steps": res["steps"], "imagined_steps_total": prev["imagined_steps_total"] + res["steps"],
               "collected_by": collected_by, "data_disagreement": u_data,
               "halt_uncertainty": halt, "return_norm": return_norm, **ev,
               "seconds": {"collect": t_collect, "fit_state_model": t_fit, "ppo": t_ppo,
                           "evaluate": time.perf_counter() - t0 - t_collect - t_fit - t_ppo}}
        record["rounds"].append(rec)
        atomic_write_json(log_path, json.loads(json.dumps(record, default=float)))
        plot_dyna(record, out / "dyna.png")
        g, ok = rec["exploitation_gap"], {k: ev[k]["success_rate"]["mean"] for k in ("mujoco", "world_model")}
        log(f"round {r}: {rec['real_steps_total']} physics steps, {rec['imagined_steps_total']} imagined; success "
            f"MuJoCo {ok['mujoco']:.0%}, learned {ok['world_model']:.0%}"
            f"; gap {g['mean']:+.0f} points [{g['lo']:+.0f}, {g['hi']:+.0f}] ({sum(rec['seconds'].values()):.0f} s)")
    final = out / FILE  # the last round's policy, where `cosmos-sim evaluate --policy OUT` looks
    atomic_write_bytes(final, (out / f"round_{config.rounds - 1}" / FILE).read_bytes())
    record["policy_path"] = str(final)
    return record


def plot_dyna(record: dict, path: Path) -> None:
    """Success in the learned world and in MuJoCo (95 % intervals) against the physics steps used so far."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from cosmos_sim.fileio import atomic_write_bytes

    rs = record["rounds"]
    x = [r["real_steps_total"] for r in rs]
    fig, ax = plt.subplots(figsize=(5, 3.2), dpi=110)
    for key, label in (("mujoco", "MuJoCo"), ("world_model", "learned world")):
        c = [r[key]["success_rate"] for r in rs]
        m = [100 * v["mean"] for v in c]
        ax.errorbar(x, m, yerr=[[a - 100 * v["lo"] for a, v in zip(m, c, strict=True)],
                                [100 * v["hi"] - a for a, v in zip(m, c, strict=True)]],
                    marker="o", capsize=3, label=label)
    ax.set_xlabel("physics steps used (collection)")
    ax.set_ylabel("success %")
    ax.set_ylim(-5, 105)
    ax.set_title(f"Dyna rounds, {record['config']['world']}")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


__all__ = ["DynaConfig", "RecordedStates", "SampledPolicy", "collect_real", "plot_dyna", "run_dyna"]
