"""Train a policy by name: PPO on a vector env of any backend, or behaviour cloning from a dataset.

What `cosmos-sim train-policy` runs; the algorithms themselves live in ppo.py and bc.py.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from cosmos_sim.config import arg

ALGOS = ("ppo", "bc")


@dataclass(frozen=True)
class PolicyTrainConfig:
    algo: str = arg("ppo", "ppo (on a backend) or bc (from --data)")
    world: str = arg("push", "world name")
    backend: str = arg("mujoco", "ppo: mujoco, pybullet or world_model")
    model: str = arg("pretrained", "ppo on world_model: the world model run or file, or 'pretrained' (shipped)")
    data: str | None = arg(None, "bc: dataset directory (from cosmos-sim collect)")
    obs_mode: str = arg("state", "what the policy sees: state, pixels or both")
    num_envs: int = arg(16, "ppo: parallel envs")
    steps: int | None = arg(None, "ppo: total env steps; bc: optimizer steps (none: PPOConfig.total_steps, "
                                  "BCConfig.steps)")
    lr: float | None = arg(None, "learning rate (none: PPOConfig.lr, BCConfig.lr)")
    seed: int = arg(0, "seed of the networks, data order and envs")
    device: str | None = arg(None, "cpu or cuda (none: cuda when available)")

    def __post_init__(self):
        from cosmos_sim.errors import UnknownChoiceError
        from cosmos_sim.evaluation.closed_loop import BACKENDS
        from cosmos_sim.worlds import get_world

        object.__setattr__(self, "world", get_world(self.world).name)
        if self.algo not in ALGOS:
            raise UnknownChoiceError("algorithm", self.algo, ALGOS)
        if self.backend not in BACKENDS:
            raise UnknownChoiceError("backend", self.backend, BACKENDS)
        if self.algo == "bc" and not self.data:
            raise ValueError("--algo bc needs --data DIR (a dataset from cosmos-sim collect)")
        for name in ("num_envs", "steps"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")

    def to_dict(self) -> dict:
        return asdict(self)


def train_policy(config: PolicyTrainConfig, out: str | Path, progress: bool = True) -> dict:
    """Train and save `out/policy.safetensors`; the result holds `summary`, the lines the CLI prints."""
    c = config
    if c.algo == "bc":
        from cosmos_sim.policies.bc import BCConfig, train_bc

        bc = BCConfig(obs_mode=c.obs_mode, steps=c.steps or BCConfig.steps, lr=c.lr or BCConfig.lr, seed=c.seed)
        r = train_bc(c.data, out, bc, progress=progress, device=c.device)
        r["summary"] = [f"bc: {r['step']} steps, action mse {r.get('mse', r.get('loss', float('nan'))):.4f}; "
                        f"policy: {r['policy_path']}"]
        return r
    import gymnasium as gym

    from cosmos_sim.envs.registration import env_id
    from cosmos_sim.policies.ppo import PPOConfig, train_ppo

    kw: dict = {"backend": c.backend, "obs_mode": c.obs_mode}
    if c.backend == "world_model":
        from cosmos_sim.evaluation.compare import load_checked_model

        kw |= {"model": load_checked_model(c.model, c.world, c.device), "array_type": "torch", "device": c.device}
    ppo = PPOConfig(total_steps=c.steps or PPOConfig.total_steps, lr=c.lr or PPOConfig.lr, seed=c.seed)
    envs = gym.make_vec(env_id(c.world), num_envs=c.num_envs, **kw)
    try:
        r = train_ppo(envs, ppo, c.obs_mode, out=out, world=c.world, device=c.device, progress=progress)
    finally:
        envs.close()
    rets = r["episode_returns"]
    last = sum(rets[-20:]) / max(1, len(rets[-20:]))
    r["summary"] = [f"ppo on {c.backend}: {r['steps']} env steps in {r['wall_s']:.0f} s, {len(rets)} episodes, "
                    f"mean return of the last 20: {last:.2f}; policy: {r['policy_path']}",
                    f"evaluate it: cosmos-sim evaluate --world {c.world.lower()} --backend mujoco --policy {out}"]
    return r
