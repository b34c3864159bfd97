"""Train a policy by name: PPO on a vector env of any backend, or behaviour cloning from a dataset.

What `cosmos-sim train-policy` runs; the algorithms themselves live in ppo.py and bc.py.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from cosmos_sim.config import arg
from cosmos_sim.errors import InputError
from cosmos_sim.worlds import get_world
from cosmos_sim.worlds.base import GYM_ENV, world_kind

ALGOS = ("ppo", "bc")


@dataclass(frozen=True)
class PolicyTrainConfig:
    algo: str = arg("ppo", "ppo (on a backend) or bc (from --data)")
    world: str = arg("push", "world name")
    backend: str = arg("mujoco", "ppo: mujoco, pybullet or world_model")
    model: str = arg("pretrained", "ppo on world_model: the world model run or file, or 'pretrained' (shipped)")
    data: str | None = arg(None, "bc: dataset directory (from cosmos-sim collect)")
    obs_mode: str = arg("state", "what the policy sees: state, pixels or both")
    num_envs: int | None = arg(None, "ppo: parallel envs (none: 16; with --dyna-rounds, DynaConfig.num_envs)")
    steps: int | None = arg(None, "ppo: total env steps; bc: optimizer steps (none: PPOConfig.total_steps, "
                                  "BCConfig.steps)")
    lr: float | None = arg(None, "learning rate (none: PPOConfig.lr, BCConfig.lr)")
    seed: int = arg(0, "seed of the networks, data order and envs")
    save_every: int | None = arg(None, "ppo: also save the policy every N env steps (OUT/checkpoints/step_*): "
                                       "a ladder of policies along one run")
    dyna_rounds: int = arg(0, "ppo on world_model: rounds of collect -> refit the state model -> imagine "
                              "(policies/dyna.py); --steps is then the imagined steps per round")
    real_steps: int | None = arg(None, "with --dyna-rounds: MuJoCo steps collected per round (none: "
                                       "DynaConfig.real_steps)")
    uncertainty_penalty: float = arg(0.0, "ppo on world_model: reward minus this x the ensemble's disagreement")
    halt_uncertainty: float | None = arg(None, "ppo on world_model: truncate episodes past this disagreement")
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
            raise InputError("--algo bc needs --data DIR (a dataset from cosmos-sim collect)")
        if self.backend != "world_model" and (self.dyna_rounds or self.uncertainty_penalty or
                                              self.halt_uncertainty is not None):
            raise InputError("--dyna-rounds, --uncertainty-penalty and --halt-uncertainty train in the learned "
                             f"world: they need --backend world_model, got --backend {self.backend}")
        if self.dyna_rounds < 0:
            raise InputError(f"dyna_rounds must be >= 0, got {self.dyna_rounds}")
        if self.save_every is not None and (self.algo != "ppo" or self.dyna_rounds):
            raise InputError("--save-every saves checkpoints along a plain PPO run (--algo ppo, no --dyna-rounds)")
        for name in ("num_envs", "steps", "real_steps", "save_every"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise InputError(f"{name} must be >= 1, got {getattr(self, name)}")

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
    if c.dyna_rounds:
        from cosmos_sim.policies.dyna import DynaConfig, run_dyna

        d = DynaConfig(world=c.world, rounds=c.dyna_rounds, real_steps=c.real_steps or DynaConfig.real_steps,
                       num_envs=c.num_envs or DynaConfig.num_envs,
                       imagined_steps=c.steps or DynaConfig.imagined_steps, lr=c.lr, seed=c.seed,
                       uncertainty_penalty=c.uncertainty_penalty, halt_uncertainty=c.halt_uncertainty)
        r = run_dyna(d, c.model, out, device=c.device, progress=progress, log=print if progress else lambda m: None)
        last = r["rounds"][-1]
        r["summary"] = [f"dyna: {len(r['rounds'])} rounds, {last['real_steps_total']} MuJoCo steps, "
                        f"{last['imagined_steps_total']} imagined; last round's success: MuJoCo "
                        f"{last['mujoco']['success_rate']['mean']:.0%}, learned "
                        f"{last['world_model']['success_rate']['mean']:.0%}; policy: {r['policy_path']}",
                        f"log: {Path(out) / 'dyna_log.json'}, plot: {Path(out) / 'dyna.png'}"]
        return r
    from cosmos_sim.envs.registration import make_world_vec_env
    from cosmos_sim.policies.ppo import PPOConfig, train_ppo

    # a pixel actor trains beside the state (the critic's input and an auxiliary target: policies/ppo.py)
    kw: dict = {"backend": c.backend, "obs_mode": "both" if c.obs_mode == "pixels" else c.obs_mode}
    if hasattr(get_world(c.world), "env_id") and c.backend != "world_model":
        kw["backend"] = "env"
    if c.backend == "world_model":
        from cosmos_sim.evaluation.compare import load_checked_model

        kw |= {"model": load_checked_model(c.model, c.world, c.device), "array_type": "torch", "device": c.device,
               "uncertainty_penalty": c.uncertainty_penalty, "halt_uncertainty": c.halt_uncertainty}
    ppo = PPOConfig(total_steps=c.steps or PPOConfig.total_steps, lr=c.lr or PPOConfig.lr, seed=c.seed)
    envs = make_world_vec_env(c.world, num_envs=c.num_envs or 16, **kw)
    try:
        r = train_ppo(envs, ppo, c.obs_mode, out=out, world=c.world, device=c.device, progress=progress,
                      save_every=c.save_every)
    finally:
        envs.close()
    rets = r["episode_returns"]
    last = sum(rets[-20:]) / max(1, len(rets[-20:]))
    world_arg = c.world if world_kind(c.world) == GYM_ENV else c.world.lower()  # env ids are case-sensitive
    r["summary"] = [f"ppo on {kw['backend']}: {r['steps']} env steps in {r['wall_s']:.0f} s, {len(rets)} episodes, "
                    f"mean return of the last 20: {last:.2f}; policy: {r['policy_path']}",
                    f"evaluate it: cosmos-sim evaluate --world {world_arg} --backend {kw['backend']} "
                    f"--policy {out}"]
    return r
