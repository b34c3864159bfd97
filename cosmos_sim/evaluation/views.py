"""Does a learned world obey its cameras? Novel views and camera following, scored against physics.

- `novel_view`: context frame at pose A, rollout told pose B, scored against physics rendered at B; beside
  it the same rollout from a context frame at B (the same-pose figure). A model that renders the state from
  any pose scores the two alike; one that keeps the context's viewpoint falls behind at B.
- `camera_following`: the learned env and the physics env stepped with the same actions and the same smooth
  random camera path (`camera_control`), scored frame by frame.

Both render the physics reference with several views of one state (`PhysicsEnv(cameras=[A, B])`), so A and
B see exactly the same scene. Poses are drawn from the model's training range (`model.camera_coverage`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch

from cosmos_sim.config import arg
from cosmos_sim.errors import InputError


@dataclass(frozen=True)
class ViewConfig:
    episodes: int = arg(20, "held-out start states (seeds SEED, SEED+1, ...)")
    horizon: int = arg(16, "rollout steps")
    policy: str = arg("scripted:0.5", "who acts (a policy spec)")
    seed: int = arg(5000, "first seed (past the shipped models' training seeds)")
    horizons: tuple[int, ...] = arg((1, 4, 16), "steps at which figures are reported")

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    def __post_init__(self):
        if self.episodes < 1 or self.horizon < 1 or not self.horizons or max(self.horizons) > self.horizon:
            raise InputError(f"need episodes >= 1 and horizons within 1..horizon, got {self}")


def _psnr(pred: np.ndarray, ref: np.ndarray) -> float:
    from cosmos_sim.evaluation.metrics import psnr

    return float(psnr(torch.from_numpy(pred).float() / 255, torch.from_numpy(ref).float() / 255))


def _physics_two_views(world, backend: str, image_size: int, seed: int, poses, config: ViewConfig):
    """Frames of one episode from both poses, and its actions (the episode may end before the horizon)."""
    from cosmos_sim.envs.physics_env import PhysicsEnv
    from cosmos_sim.policies.base import batch_obs
    from cosmos_sim.policies.registry import policy_from_spec

    env = PhysicsEnv(world, backend=backend, cameras=list(poses), image_size=image_size, obs_mode="both",
                     time_limit=False)
    try:
        obs, info = env.reset(seed=seed)
        policy = policy_from_spec(config.policy, world, seed=seed)
        frames, states, actions = [obs["pixels"]], [info["state"]], []
        for _ in range(config.horizon):
            a = policy.act(batch_obs(obs))[0]
            obs, _, terminated, truncated, info = env.step(a)
            frames.append(obs["pixels"])
            states.append(info["state"])
            actions.append(a)
            if terminated or truncated:
                break
        return np.stack(frames), np.stack(states).astype(np.float32), np.stack(actions).astype(np.float32)
    finally:
        env.close()


@torch.no_grad()
def _rollout(model, frame0: np.ndarray, start_pose, state0: np.ndarray, actions: np.ndarray, pose) -> np.ndarray:
    """One rollout: a context frame at `start_pose`, then every step told the camera is at `pose`."""
    dev = model.device
    ext0 = torch.from_numpy(start_pose.extrinsics().astype(np.float32)).to(dev)[None, None]
    fov0 = torch.tensor([[start_pose.fovy]], dtype=torch.float32, device=dev)
    st = model.start(torch.from_numpy(frame0).to(dev)[None, None], ext0, fov0,
                     states=torch.from_numpy(state0).to(dev)[None])
    rays = model.rays(torch.from_numpy(pose.extrinsics().astype(np.float32)).to(dev)[None],
                      torch.tensor([pose.fovy], dtype=torch.float32, device=dev))
    g = torch.Generator(device=dev).manual_seed(0)
    out = []
    for a in actions:
        f, _ = model.step(st, torch.from_numpy(a).to(dev)[None], rays=rays, generator=g)
        out.append(f[0].cpu().numpy())
    return np.stack(out)


def _summary(scores: dict[str, list[list[float]]], horizons: Sequence[int]) -> dict:
    """Mean PSNR at each horizon ("1", "4", ...: JSON keys) over the episodes that lasted that long."""
    out = {}
    for name, per_episode in scores.items():
        out[name] = {}
        for h in horizons:
            vals = [s[h - 1] for s in per_episode if len(s) >= h]
            out[name][str(h)] = float(np.mean(vals)) if vals else float("nan")
        out[name]["episodes"] = len(per_episode)
    return out


def _ranged(model, world):
    """The world, the model's training cameras (a range: these measures need poses to choose from) and the
    physics backend it learned."""
    from cosmos_sim.worlds import get_world

    world = get_world(world)
    cov = model.camera_coverage(world)
    if cov.range is None:
        raise InputError(f"{world.name}: this model was trained on one fixed camera ({cov.describe()}): another "
                         "view is outside what it knows; train on random or moving cameras")
    return world, cov, model.info.get("backend", "mujoco")


def novel_view(model, world, config: ViewConfig = ViewConfig(), progress: bool = False,
               examples: list | None = None) -> dict:
    """Novel-view vs same-pose PSNR (dB) at each horizon; see the module docstring. `examples`, when given,
    receives each episode's physics frames [T+1, 2 (A, B), H, W, 3] and novel-view rollout [T, H, W, 3]: what
    `novel_view_grid` draws."""
    from tqdm.auto import tqdm

    world, cov, backend = _ranged(model, world)
    scores: dict[str, list[list[float]]] = {"novel": [], "same": []}
    for k in tqdm(range(config.episodes), desc="novel views", disable=not progress):
        seed = config.seed + k
        rng = np.random.default_rng([seed, 26])
        a_pose, b_pose = cov.range.sample(rng), cov.range.sample(rng)
        frames, states, actions = _physics_two_views(world, backend, model.image_size, seed, (a_pose, b_pose),
                                                     config)
        ref = frames[1:, 1]
        for name, v0, p0 in (("novel", 0, a_pose), ("same", 1, b_pose)):
            pred = _rollout(model, frames[0, v0], p0, states[0], actions, b_pose)
            scores[name].append([_psnr(p, r) for p, r in zip(pred, ref, strict=True)])
            if name == "novel" and examples is not None:
                examples.append((frames, pred))
    result = _summary(scores, config.horizons)
    result["gap"] = {str(h): result["same"][str(h)] - result["novel"][str(h)] for h in config.horizons}
    return {"config": config.to_dict(), "coverage": cov.describe(), **result}


def novel_view_grid(examples: Sequence[tuple[np.ndarray, np.ndarray]], rows: int = 4) -> np.ndarray:
    """A picture of `novel_view` from the `examples` it gathered: per episode (the first `rows`), the context
    frame at A, then physics at B beside the novel-view rollout at h = 1 and at the last step (uint8 [H, W, 3],
    labelled)."""
    from cosmos_sim.video import grid

    if not examples:
        raise InputError("novel_view_grid needs the examples novel_view(..., examples=[]) gathered")
    frames_rows, labels = [], []
    for frames, pred in examples[:rows]:
        h = len(pred)
        frames_rows.append([frames[0, 0], frames[1, 1], pred[0], frames[h, 1], pred[h - 1]])
        labels.append(["context A", "physics B 1", "learned B 1", f"physics B {h}", f"learned B {h}"])
    return grid(frames_rows, labels=labels, scale=3)


def camera_following(model, world, config: ViewConfig = ViewConfig(), progress: bool = False) -> dict:
    """PSNR (dB) of the learned env against physics along the same smooth random camera path."""
    from tqdm.auto import tqdm

    from cosmos_sim.envs.physics_env import PhysicsEnv
    from cosmos_sim.envs.world_model_env import LearnedEnvConfig, WorldModelEnv
    from cosmos_sim.policies.base import batch_obs
    from cosmos_sim.policies.explore import CameraWalk
    from cosmos_sim.policies.registry import policy_from_spec
    from cosmos_sim.worlds import get_world

    world = get_world(world)
    backend = model.info.get("backend", "mujoco")
    kw = dict(camera="random", camera_control=True, obs_mode="pixels")
    learned = WorldModelEnv(LearnedEnvConfig(world=world, model=model, time_limit=False, **kw))
    physics = PhysicsEnv(world, backend=backend, image_size=model.image_size, time_limit=False, **kw)
    scores: list[list[float]] = []
    try:
        for k in tqdm(range(config.episodes), desc="camera following", disable=not progress):
            seed = config.seed + k
            obs_l, _ = learned.reset(seed=seed)
            obs_p, info = physics.reset(seed=seed)  # the same state and the same first pose
            policy, walk = policy_from_spec(config.policy, world, seed=seed), CameraWalk(seed=seed)
            s = []
            for _ in range(config.horizon):
                a = np.concatenate([policy.act(batch_obs({"state": info["state"]}))[0], walk()])
                obs_l, *_ = learned.step(a)
                obs_p, _, terminated, truncated, info = physics.step(a)
                s.append(_psnr(obs_l, obs_p))
                if terminated or truncated:
                    break
            scores.append(s)
    finally:
        learned.close()
        physics.close()
    return {"config": config.to_dict(), **_summary({"following": scores}, config.horizons)}


def read_position(frame: np.ndarray, pose, colour: Sequence[float], height: float,
                  tolerance: float = 0.2) -> np.ndarray | None:
    """Where an object of `colour` (rgb in [0, 1]) is on the plane z = `height`, read from one frame: the centroid
    of its pixels (by chromaticity, so shading does not matter; dark pixels, whose chromaticity is noise in a
    decoded frame, are left out) cast back through the camera. None if unseen."""
    x = frame.astype(np.float64) / 255.0
    bright = x.max(-1) > 0.25
    x = x / np.maximum(x.max(-1, keepdims=True), 1e-3)
    ref = np.asarray(colour, dtype=np.float64)
    ref = ref / ref.max()
    i, j = np.nonzero((np.linalg.norm(x - ref, axis=-1) < tolerance) & bright)
    if len(i) < 4:
        return None
    h, w = frame.shape[:2]
    K = pose.intrinsics(h, w)
    d = np.array([(j.mean() + 0.5 - K[0, 2]) / K[0, 0], (i.mean() + 0.5 - K[1, 2]) / K[1, 1], 1.0]) @ pose.rotation
    eye = np.asarray(pose.eye)
    if abs(d[2]) < 1e-9:
        return None
    return (eye + (height - eye[2]) / d[2] * d)[:2]


def view_consistency(model, world, colour: Sequence[float], height: float, config: ViewConfig = ViewConfig(),
                     progress: bool = False) -> dict:
    """Do two predicted views show the object at the same place? The object's position read from each view of
    a two-view learned rollout (`read_position`), their distance in cm per step; beside it the same read on
    physics frames of the same views (what the reading itself disagrees by: the yardstick)."""
    from tqdm.auto import tqdm

    from cosmos_sim.envs.physics_env import PhysicsEnv
    from cosmos_sim.envs.world_model_env import LearnedEnvConfig, WorldModelEnv
    from cosmos_sim.policies.base import batch_obs
    from cosmos_sim.policies.registry import policy_from_spec

    world, cov, backend = _ranged(model, world)
    scores: dict[str, list[list[float]]] = {"learned": [], "physics": []}
    for k in tqdm(range(config.episodes), desc="view consistency", disable=not progress):
        seed = config.seed + k
        rng = np.random.default_rng([seed, 27])
        poses = [cov.range.sample(rng), cov.range.sample(rng)]
        learned = WorldModelEnv(LearnedEnvConfig(world=world, model=model, cameras=poses, obs_mode="pixels",
                                                 time_limit=False))
        physics = PhysicsEnv(world, backend=backend, cameras=poses, image_size=model.image_size, obs_mode="pixels",
                             time_limit=False)
        try:
            learned.reset(seed=seed)
            _, info = physics.reset(seed=seed)
            policy = policy_from_spec(config.policy, world, seed=seed)
            per = {"learned": [], "physics": []}
            for _ in range(config.horizon):
                a = policy.act(batch_obs({"state": info["state"]}))[0]
                px_l, *_ = learned.step(a)
                px_p, _, terminated, truncated, info = physics.step(a)
                for name, px in (("learned", px_l), ("physics", px_p)):
                    xy = [read_position(px[v], poses[v], colour, height) for v in range(2)]
                    per[name].append(float("nan") if any(p is None for p in xy) else
                                     100.0 * float(np.linalg.norm(xy[0] - xy[1])))
                if terminated or truncated:
                    break
        finally:
            learned.close()
            physics.close()
        for name in scores:
            scores[name].append(per[name])
    out = {}
    for name, per_episode in scores.items():  # episodes where the object was seen in both views at step h
        out[name] = {str(h): float(np.nanmean(v)) if len(v := [s[h - 1] for s in per_episode if len(s) >= h
                                                               and np.isfinite(s[h - 1])]) else float("nan")
                     for h in config.horizons}
        out[name]["episodes"] = len(per_episode)
    return {"config": config.to_dict(), "unit": "cm", **out}
