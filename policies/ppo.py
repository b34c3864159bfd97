"""PPO (clipped surrogate, GAE, Gaussian actions) in one readable file, CleanRL style.

`train_ppo(envs, PPOConfig(...), obs_mode)` trains on any `gymnasium.vector.VectorEnv` with Dict
observations and a Box action space: physics envs (numpy arrays) and the learned world's
`WorldModelVectorEnv(array_type="torch")`, whose tensors stay on their device (no host copies in
the rollout; one small sync per iteration for the episode statistics).

Autoreset: Gymnasium 1.x NEXT_STEP mode. When an env's episode ends at step t (terminated or
truncated), the observation returned by step t is the episode's *final* observation, and step t+1
ignores its action, returns the reset observation, reward 0 and both flags False. That step t+1 is
not a transition of the MDP, so it is marked invalid: it contributes no reward to the episode
statistics, its advantage is 0 and it is left out of every loss. Its recorded observation (the
final one) is still useful: its value V(final obs) is the bootstrap for step t when the episode was
truncated (time limit), and is ignored (next value 0) when it terminated. Advantages never flow
across the episode boundary (see `compute_gae`).

The trained `ActorCritic` is saved with `save_policy(..., "ppo", ...)` and comes back with
`load_policy(path)` as a deterministic `NetworkPolicy` (the mean action, clipped to [-1, 1]).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from torch import nn
from torch.distributions import Normal

from cosmos_sim.config import arg
from cosmos_sim.device import resolve_device
from cosmos_sim.errors import InputError
from cosmos_sim.policies.base import obs_dict, space_dict
from cosmos_sim.policies.networks import ObsEncoder, check_pixel_options, encoder_options
from cosmos_sim.policies.saved import FILE, NetworkPolicy, register_policy_kind, save_policy, stack_frames

KIND = "ppo"
CRITICS = ("auto", "same")


# --- 1. config ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PPOConfig:
    total_steps: int = arg(100_000, "env steps, summed over envs")
    num_steps: int = 128  # rollout length per env
    lr: float = arg(1e-3, "learning rate, linearly annealed to 0")
    gamma: float = 0.95  # Push pays off within ~20 steps; a longer horizon learns far slower (docs/experiments.md)
    gae_lambda: float = 0.95
    update_epochs: int = 10
    minibatches: int = 8
    clip_coef: float = 0.2
    ent_coef: float = 0.0
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    norm_adv: bool = True
    norm_obs: bool = True  # states scaled by running mean/std (kept in the saved policy)
    norm_reward: bool = True  # rewards scaled by the running std of the discounted return
    hidden: int = 256
    init_log_std: float = 0.0  # std 1 over [-1, 1] actions: the pusher must find the block first
    seed: int = arg(0, "seed of the networks, the policy's sampling and the envs")
    # pixel policies (obs_mode "pixels" or "both"); a state policy ignores these
    encoder: str = arg("impala", "pixel encoder: impala (IMPALA's residual CNN: it places a 3 cm target far better) "
                                 "or small (three convolutions, twice as fast)")
    frame_stack: int = arg(2, "frames a pixel policy sees at once (the last k; motion shows from 2)")
    augment: str = arg("none", "pixel augmentation in the updates: none or shift (DrQ's random shift)")
    critic: str = arg("auto", "what the critic sees: auto (the state when the env gives it beside the pixels: "
                              "an asymmetric actor-critic) or same (what the actor sees)")
    actor_layers: int = arg(1, "pixel policies: hidden layers (tanh, `hidden` wide) between the CNN's features and "
                               "the action mean (a state policy's MLP is its encoder)")
    aux_state: float = arg(1.0, "pixel policies: weight of an auxiliary loss that predicts the (normalized) state "
                                "from the actor's features, when the env gives the state; 0: off")

    def __post_init__(self):
        from cosmos_sim.errors import UnknownChoiceError

        check_pixel_options(self.encoder, self.augment, self.frame_stack)
        if self.critic not in CRITICS:
            raise UnknownChoiceError("critic input", self.critic, CRITICS)
        if int(self.actor_layers) < 0:
            raise InputError(f"actor_layers must be >= 0, got {self.actor_layers}")
        if not (self.aux_state >= 0.0 and math.isfinite(self.aux_state)):
            raise InputError(f"aux_state must be a finite weight >= 0, got {self.aux_state!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> PPOConfig:
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise InputError(f"unknown PPOConfig keys {unknown}; valid keys: {sorted(names)}")
        return cls(**d)


# --- 2. the network ---------------------------------------------------------------------------------------
def _layer(layer: nn.Linear, std: float) -> nn.Linear:
    nn.init.orthogonal_(layer.weight, std)
    nn.init.zeros_(layer.bias)
    return layer


class RunningNorm(nn.Module):
    """Running mean/variance of a vector (Chan et al. parallel update); buffers travel with the policy."""

    def __init__(self, dim: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("var", torch.ones(dim))
        self.register_buffer("count", torch.zeros(()))

    @torch.no_grad()
    def update(self, x: torch.Tensor) -> None:
        x = x.reshape(-1, self.mean.numel()).float()
        if x.shape[0] == 0:
            return
        n, m, v = x.shape[0], x.mean(0), x.var(0, unbiased=False)
        total = self.count + n
        delta = m - self.mean
        self.mean += delta * n / total
        self.var.copy_((self.var * self.count + v * n + delta**2 * self.count * n / total) / total)
        self.count.copy_(total)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return ((x.float() - self.mean) / (self.var + 1e-8).sqrt()).clamp(-10.0, 10.0)


class ActorCritic(nn.Module):
    """ObsEncoder -> Gaussian actor (linear mean, state-independent log_std); a critic on its own encoder.

    States pass through a running normalizer first (identity until trained with norm_obs). The mean
    is not squashed: sampled actions are clipped to the action bounds when sent to the env (and
    NetworkPolicy clips the mean to [-1, 1]), while log-probabilities use the unclipped sample.
    A pixel actor may have a critic that sees the state (`critic_obs_mode`: asymmetric actor-critic, Pinto et
    al. 2017: the value is easy to learn from the state, and only the actor must act from pixels) and a head
    that predicts the state from the actor's features (`aux_state`), which teaches its CNN what matters far
    sooner than the policy gradient alone. Both serve training only: the saved policy acts on pixels.
    """

    def __init__(self, config: dict):
        super().__init__()
        self.config = dict(config)
        hidden = config.get("hidden", 128)
        opts = encoder_options(config)
        obs_mode, state_dim = config["obs_mode"], config.get("state_dim") or 0
        critic_mode = config.get("critic_obs_mode", obs_mode)
        size = config.get("image_size") or 64
        self.encoder = ObsEncoder(obs_mode, state_dim, size, hidden, **opts)
        self.critic_encoder = ObsEncoder(critic_mode, state_dim, size, hidden,
                                         **(opts if critic_mode != "state" else {}))
        self.state_norm = RunningNorm(state_dim)
        layers, width = [], self.encoder.out_dim
        for _ in range(int(config.get("actor_layers", 0))):
            layers += [_layer(nn.Linear(width, hidden), math.sqrt(2)), nn.Tanh()]
            width = hidden
        self.actor_body = nn.Sequential(*layers)  # empty (the identity) for state policies and older pixel ones
        self.actor_mean = _layer(nn.Linear(width, config["action_dim"]), 0.01)
        self.actor_log_std = nn.Parameter(torch.full((config["action_dim"],), float(config.get("init_log_std", -0.5))))
        self.critic = _layer(nn.Linear(self.critic_encoder.out_dim, 1), 1.0)
        self.aux = nn.Linear(self.encoder.out_dim, state_dim) if config.get("aux_state") else None

    def _norm(self, obs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {**obs, "state": self.state_norm(obs["state"])} if "state" in obs else obs

    def act_tensor(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Deterministic (mean) actions [N, A]."""
        return self.actor_mean(self.actor_body(self.encoder(self._norm(obs))))

    def get_value(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.critic(self.critic_encoder(self._norm(obs))).squeeze(-1)

    def get_action_and_value(self, obs: dict[str, torch.Tensor], action: torch.Tensor | None = None,
                             aux: bool = False) -> tuple[torch.Tensor, ...]:
        """(action [N, A], log-prob [N], entropy [N], value [N]); samples an action when none is given. With
        `aux`, a fifth entry: the auxiliary state loss (a scalar)."""
        obs = self._norm(obs)
        features = self.encoder(obs)
        mean = self.actor_mean(self.actor_body(features))
        dist = Normal(mean, self.actor_log_std.exp().expand_as(mean))
        if action is None:
            action = dist.sample()
        value = self.critic(self.critic_encoder(obs)).squeeze(-1)
        out = (action, dist.log_prob(action).sum(-1), dist.entropy().sum(-1), value)
        if aux:
            out += (((self.aux(features) - obs["state"]) ** 2).mean(),)
        return out


@register_policy_kind(KIND)
def build(config: dict) -> ActorCritic:
    return ActorCritic(config)


# --- 3. training --------------------------------------------------------------------------------------------
def compute_gae(rewards: torch.Tensor, values: torch.Tensor, next_value: torch.Tensor, terminated: torch.Tensor,
                truncated: torch.Tensor, valid: torch.Tensor, gamma: float, lam: float
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """(advantages, returns), all [T, N], for a NEXT_STEP-autoreset rollout.

    Step t took obs[t] (value values[t]) to the observation recorded at t+1 (value values[t+1], or
    `next_value` after the last step). `valid[t]` is False for the autoreset step that follows an
    episode's end; its advantage is 0. A terminated step bootstraps from 0, a truncated one from the
    value of its final observation, and neither lets later advantages flow back into its episode.
    """
    T = rewards.shape[0]
    adv = torch.zeros_like(rewards)
    last = torch.zeros_like(next_value)
    for t in reversed(range(T)):
        nv = next_value if t == T - 1 else values[t + 1]
        delta = rewards[t] + gamma * nv * (~terminated[t]).float() - values[t]
        cont = (~(terminated[t] | truncated[t])).float()
        last = torch.where(valid[t], delta + gamma * lam * cont * last, torch.zeros_like(last))
        adv[t] = last
    return adv, adv + values


def _keys(obs_mode: str) -> tuple[str, ...]:
    if obs_mode not in ("pixels", "state", "both"):
        raise InputError(f"obs_mode must be pixels, state or both, got {obs_mode!r}")
    return ("pixels", "state") if obs_mode == "both" else (obs_mode,)


def _world_name(envs: VectorEnv) -> str | None:
    for env in (envs, *getattr(envs, "envs", [])[:1]):
        world = getattr(getattr(env, "unwrapped", env), "world", None)
        if world is not None:
            return getattr(world, "name", str(world))
    return None


def _net_config(envs: VectorEnv, obs_mode: str, config: PPOConfig, camera: str | None = None) -> dict:
    obs_space, act_space = space_dict(envs.single_observation_space), envs.single_action_space
    if not isinstance(act_space, spaces.Box) or len(act_space.shape) != 1:
        raise TypeError(f"PPO needs a 1-D Box action space, got {act_space}")
    missing = [k for k in _keys(obs_mode) if k not in obs_space]
    if missing:
        raise InputError(f"obs_mode {obs_mode!r} needs observation keys {missing}; the env has "
                         f"{sorted(obs_space)}")
    image_size, pixels = None, "pixels" in _keys(obs_mode)
    if pixels:
        shape = obs_space["pixels"].shape  # [H, W, 3] or [V, H, W, 3]
        h, w = shape[-3:-1]
        if h != w:
            raise InputError(f"PPO's pixel encoder needs square frames, got {h}x{w}")
        image_size = int(h)
    # a pixel actor trains beside the state when the env gives it: the critic's input and the auxiliary target
    privileged = obs_mode == "pixels" and "state" in obs_space
    critic_mode = "state" if privileged and config.critic == "auto" else obs_mode
    aux = privileged and config.aux_state > 0
    uses_state = "state" in _keys(obs_mode) or critic_mode == "state" or aux
    state_dim = int(obs_space["state"].shape[0]) if uses_state else 0
    net = {"obs_mode": obs_mode, "state_dim": state_dim, "image_size": image_size,
           "action_dim": int(act_space.shape[0]), "hidden": config.hidden, "init_log_std": config.init_log_std}
    if pixels:
        net |= {"encoder": config.encoder, "frame_stack": int(config.frame_stack), "augment": config.augment,
                "views": int(shape[0]) if len(shape) == 4 else 1, "camera": camera or "fixed",
                "camera_dim": int(obs_space["camera"].shape[0]) if "camera" in obs_space else 0,
                "critic_obs_mode": critic_mode, "aux_state": aux, "actor_layers": int(config.actor_layers)}
    return net


def _inputs(net_config: dict) -> tuple[str, ...]:
    """The observation entries training reads: the actor's, the critic's, the auxiliary target, the camera pose."""
    keys = list(_keys(net_config["obs_mode"]))
    if net_config.get("critic_obs_mode") == "state" or net_config.get("aux_state"):
        keys.append("state")
    if net_config.get("camera_dim"):
        keys.append("camera")
    return tuple(dict.fromkeys(keys))


def train_ppo(envs: VectorEnv, config: PPOConfig, obs_mode: str, out: str | Path | None = None,
              world: str | None = None, device: str | torch.device | None = None, progress: bool = True,
              log=None, init: ActorCritic | None = None, save_every: int | None = None,
              schedule: tuple[float, float] = (0.0, 1.0), return_norm: dict | None = None,
              camera: str | None = None) -> dict:
    """Train an ActorCritic on `envs`; returns episode statistics, the policy and, with `out`, its path.

    `init`: a network to continue from (its weights and state normalizer; the Dyna loop trains one policy
    over several rounds), else a fresh one; `schedule=(a, b)`: this call covers that part of one learning
    rate anneal (the Dyna loop splits one anneal over its rounds), and `return_norm` (a previous result's)
    continues its reward scale, so a run continued in parts learns as one run would.
    `save_every=K` (with `out`) also saves the policy every K env
    steps as `out/checkpoints/step_<steps>/policy.safetensors`: a ladder of policies along one run.
    `log(metrics: dict)` is called once per iteration. A pixel policy stacks its last `config.frame_stack` frames
    as `NetworkPolicy` will at evaluation; `camera` names the envs' camera setting, recorded in the policy.
    The result holds `episode_returns` and `episode_lengths` of every finished episode in order, `steps`
    (env steps taken), `wall_s`,
    `history` (the per-iteration metrics), `policy` (a NetworkPolicy) and `policy_path` (or None).
    """
    from tqdm.auto import tqdm

    if save_every is not None and (save_every < 1 or out is None):  # before any work
        raise InputError(f"save_every must be a positive number of steps and needs out=, got {save_every!r}")
    mode = envs.metadata.get("autoreset_mode", AutoresetMode.NEXT_STEP)
    if mode not in (AutoresetMode.NEXT_STEP, AutoresetMode.NEXT_STEP.value):
        raise InputError(f"train_ppo needs a vector env in NEXT_STEP autoreset mode, got {mode}")
    net_config = _net_config(envs, obs_mode, config, camera)
    if init is not None:
        shape_keys = ("obs_mode", "state_dim", "image_size", "action_dim", "views", "camera_dim", "critic_obs_mode")
        if any(init.config.get(k) != net_config.get(k) for k in shape_keys):
            raise InputError(f"the init policy's network {init.config} does not fit these envs ({net_config})")
        net_config = dict(init.config)
    keys = _inputs(net_config)
    stack = int(net_config.get("frame_stack", 1)) if "pixels" in keys else 1
    world = world or _world_name(envs)
    if out is not None and world is None:
        raise InputError("cannot tell which world these envs simulate; pass world= to save the policy")
    N, T = envs.num_envs, config.num_steps
    iterations = max(1, config.total_steps // (N * T))

    torch.manual_seed(config.seed)
    next_obs = obs_dict(envs.reset(seed=config.seed)[0])
    as_torch = isinstance(next_obs[keys[0]], torch.Tensor)
    # the envs' own device when they hand out tensors, else the one asked for (None: CUDA when available)
    device = next_obs[keys[0]].device if device is None and as_torch else resolve_device(device)

    def to_t(x: Any) -> torch.Tensor:  # env output -> tensor on `device` (no copy when already there)
        return x.to(device) if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x), device=device)

    frames: torch.Tensor | None = None  # a pixel policy's last frames per env [N, k, V, H, W, 3]

    def select(o: Any, fresh: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """The entries training reads; pixels stacked (`fresh`: the envs whose frame starts an episode)."""
        nonlocal frames
        o = obs_dict(o)
        got = {k: to_t(o[k]) for k in keys}
        if "pixels" in got:
            px = got["pixels"]
            frames, got["pixels"] = stack_frames(frames, px if px.ndim == 5 else px[:, None], fresh, stack)
        return got

    net = ActorCritic(net_config).to(device)
    if init is not None:
        net.load_state_dict(init.state_dict())
    optimizer = torch.optim.Adam(net.parameters(), lr=config.lr, eps=1e-5)
    low = torch.as_tensor(envs.single_action_space.low, dtype=torch.float32, device=device)
    high = torch.as_tensor(envs.single_action_space.high, dtype=torch.float32, device=device)

    # rollout storage [T, N, ...]
    obs = select(next_obs)
    if config.norm_obs and "state" in obs:
        net.state_norm.update(obs["state"])
    ret_norm = RunningNorm(1).to(device)  # of the discounted return, for reward scaling
    if return_norm is not None:
        ret_norm.load_state_dict({k: torch.as_tensor(return_norm[k], dtype=torch.float32, device=device).reshape(
            v.shape) for k, v in ret_norm.state_dict().items()})
    disc_ret = torch.zeros(N, device=device)
    obs_buf = {k: torch.zeros((T, *v.shape), dtype=v.dtype, device=device) for k, v in obs.items()}
    actions = torch.zeros((T, N, net_config["action_dim"]), device=device)
    logprobs, values, rewards = (torch.zeros((T, N), device=device) for _ in range(3))
    terms, truncs, valid = (torch.zeros((T, N), dtype=torch.bool, device=device) for _ in range(3))
    # episode statistics, kept on the device and read once per iteration
    ep_ret, ep_len = torch.zeros(N, device=device), torch.zeros(N, dtype=torch.long, device=device)
    fin_done = torch.zeros((T, N), dtype=torch.bool, device=device)
    fin_ret, fin_len = torch.zeros((T, N), device=device), torch.zeros((T, N), dtype=torch.long, device=device)
    autoreset = torch.zeros(N, dtype=torch.bool, device=device)  # the env's next step is an autoreset step

    episode_returns: list[float] = []
    episode_lengths: list[int] = []
    history: list[dict] = []
    from cosmos_sim.training.events import EventLog

    events = EventLog(Path(out) / "tb") if out is not None else None  # CleanRL's tag names
    start = time.perf_counter()
    bar = tqdm(total=iterations * N * T, desc="ppo", unit="step", disable=not progress)
    for it in range(iterations):
        lr = config.lr * (1.0 - (schedule[0] + (schedule[1] - schedule[0]) * it / iterations))
        for group in optimizer.param_groups:
            group["lr"] = lr

        # --- rollout
        net.eval()
        for t in range(T):
            for k in keys:
                obs_buf[k][t] = obs[k]
            valid[t] = ~autoreset
            with torch.no_grad():
                action, logprob, _, value = net.get_action_and_value(obs)
            actions[t], logprobs[t], values[t] = action, logprob, value
            env_action = torch.maximum(torch.minimum(action, high), low)
            next_obs, reward, terminated, truncated, _ = envs.step(
                env_action if as_torch else env_action.cpu().numpy())
            # On an autoreset step the env reports reward 0 and no flags; mask anyway, so an env
            # that reports something there cannot leak it into the statistics or the losses.
            r = to_t(reward).float() * valid[t]
            term, trunc = to_t(terminated).bool() & valid[t], to_t(truncated).bool() & valid[t]
            terms[t], truncs[t] = term, trunc
            if config.norm_reward:
                disc_ret = disc_ret * config.gamma + r
                ret_norm.update(disc_ret[valid[t]])
                disc_ret = torch.where(term | trunc, torch.zeros_like(disc_ret), disc_ret)
                rewards[t] = r / (ret_norm.var.sqrt() + 1e-8)
            else:
                rewards[t] = r
            ep_ret += r
            ep_len += valid[t].long()
            done = term | trunc
            fin_done[t], fin_ret[t], fin_len[t] = done, ep_ret, ep_len
            ep_ret = torch.where(done, torch.zeros_like(ep_ret), ep_ret)
            ep_len = torch.where(done, torch.zeros_like(ep_len), ep_len)
            autoreset = done
            obs = select(next_obs, ~valid[t])  # an autoreset step returns the next episode's first frame
        with torch.no_grad():
            next_value = net.get_value(obs)
        advantages, returns = compute_gae(rewards, values, next_value, terms, truncs, valid,
                                          config.gamma, config.gae_lambda)

        # --- update, on the valid steps only
        flat_obs = {k: v.reshape(T * N, *v.shape[2:]) for k, v in obs_buf.items()}
        b_actions, b_logprobs = actions.reshape(T * N, -1), logprobs.reshape(-1)
        b_adv, b_ret, b_val = advantages.reshape(-1), returns.reshape(-1), values.reshape(-1)
        idx = valid.reshape(-1).nonzero().squeeze(1)
        net.train()
        use_aux = net.aux is not None and config.aux_state > 0
        stats: dict[str, list[torch.Tensor]] = {"pg_loss": [], "v_loss": [], "entropy": [], "approx_kl": [],
                                                "clipfrac": []} | ({"aux_loss": []} if use_aux else {})
        for _ in range(config.update_epochs):
            perm = idx[torch.randperm(len(idx), device=device)]
            for mb in torch.chunk(perm, config.minibatches):
                if len(mb) == 0:
                    continue
                _, newlogprob, entropy, newvalue, *aux = net.get_action_and_value(
                    {k: v[mb] for k, v in flat_obs.items()}, b_actions[mb], aux=use_aux)
                logratio = newlogprob - b_logprobs[mb]
                ratio = logratio.exp()
                with torch.no_grad():
                    approx_kl = ((ratio - 1) - logratio).mean()
                    clipfrac = ((ratio - 1.0).abs() > config.clip_coef).float().mean()
                adv = b_adv[mb]
                if config.norm_adv and len(mb) > 1:
                    adv = (adv - adv.mean()) / (adv.std() + 1e-8)
                pg_loss = torch.max(-adv * ratio,
                                    -adv * ratio.clamp(1 - config.clip_coef, 1 + config.clip_coef)).mean()
                v_loss = 0.5 * ((newvalue - b_ret[mb]) ** 2).mean()
                ent = entropy.mean()
                loss = pg_loss - config.ent_coef * ent + config.vf_coef * v_loss
                if aux:
                    loss = loss + config.aux_state * aux[0]
                    stats["aux_loss"].append(aux[0].detach())
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                nn.utils.clip_grad_norm_(net.parameters(), config.max_grad_norm)
                optimizer.step()
                for name, v in (("pg_loss", pg_loss), ("v_loss", v_loss), ("entropy", ent),
                                ("approx_kl", approx_kl), ("clipfrac", clipfrac)):
                    stats[name].append(v.detach())

        if config.norm_obs and "state" in obs_buf:  # for the next rollout: this one's updates used the old ones
            net.state_norm.update(obs_buf["state"][valid])

        # --- statistics (the one host sync of the iteration)
        done_np = fin_done.cpu().numpy()
        episode_returns += fin_ret.cpu().numpy()[done_np].astype(float).tolist()  # time-major order
        episode_lengths += fin_len.cpu().numpy()[done_np].astype(int).tolist()
        steps = (it + 1) * N * T
        with torch.no_grad():
            var_y = b_ret[idx].var()
            explained = float(1 - (b_ret[idx] - b_val[idx]).var() / var_y) if var_y > 0 else float("nan")
        recent = episode_returns[-max(N, 20):]
        metrics = {"iteration": it + 1, "steps": steps, "lr": lr,
                   "mean_return": float(np.mean(recent)) if recent else float("nan"),
                   "episodes": len(episode_returns), "explained_variance": explained,
                   **{k: float(torch.stack(v).mean()) if v else float("nan") for k, v in stats.items()}}
        history.append(metrics)
        if log is not None:
            log(metrics)
        if events is not None:
            recent_len = episode_lengths[-max(N, 20):]
            events.scalars(steps, {"charts/episodic_return": metrics["mean_return"],
                                   "charts/episodic_length": float(np.mean(recent_len)) if recent_len else math.nan,
                                   "charts/learning_rate": lr, "losses/value_loss": metrics["v_loss"],
                                   "losses/policy_loss": metrics["pg_loss"], "losses/entropy": metrics["entropy"],
                                   "losses/approx_kl": metrics["approx_kl"], "losses/clipfrac": metrics["clipfrac"],
                                   "losses/explained_variance": explained}
                           | ({"losses/aux_state": metrics["aux_loss"]} if "aux_loss" in metrics else {}))
        if save_every is not None and steps // save_every > (steps - N * T) // save_every:
            save_policy(Path(out) / "checkpoints" / f"step_{steps:09d}", net, KIND, net_config, world, obs_mode,
                        info={"ppo_config": config.to_dict(), "steps": steps, "episodes": len(episode_returns),
                              "final_mean_return": metrics["mean_return"]})
        bar.update(N * T)
        bar.set_postfix(ret=f"{metrics['mean_return']:.2f}", eps=len(episode_returns))
    bar.close()
    if events is not None:
        events.close()

    net = net.eval()
    wall = time.perf_counter() - start
    result: dict[str, Any] = {"episode_returns": episode_returns, "episode_lengths": episode_lengths,
                              "steps": iterations * N * T, "iterations": iterations, "wall_s": wall,
                              "history": history, "net_config": net_config, "policy_path": None,
                              "return_norm": {k: v.cpu().reshape(-1).tolist()
                                              for k, v in ret_norm.state_dict().items()}}
    if out is not None:
        tail = episode_returns[-max(N, 20):]
        path = save_policy(Path(out), net, KIND, net_config, world, obs_mode,
                           info={"ppo_config": config.to_dict(), "steps": result["steps"],
                                 "episodes": len(episode_returns),
                                 "final_mean_return": float(np.mean(tail)) if tail else None})
        result["policy_path"] = str(path)
    result["policy"] = NetworkPolicy(net, KIND, world, obs_mode, net_config, device=device)
    return result


__all__ = ["FILE", "KIND", "ActorCritic", "PPOConfig", "build", "compute_gae", "train_ppo"]
