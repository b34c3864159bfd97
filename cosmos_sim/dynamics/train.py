"""Train a dynamics family (plus the state head) on a dataset's latents and export a WorldModel."""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from torch import nn

from cosmos_sim.data import EpisodeDataset
from cosmos_sim.dynamics.base import FAMILIES, build_dynamics
from cosmos_sim.dynamics.latents import LatentWindows, load_or_build_cache
from cosmos_sim.errors import UnknownChoiceError
from cosmos_sim.tokenizer import CausalVideoTokenizer
from cosmos_sim.tokenizer.train import split_episodes
from cosmos_sim.training import TrainConfig, Trainer
from cosmos_sim.training.checkpoint import resolve_checkpoint
from cosmos_sim.world_model import FILE, StateHead, WorldModel

KIND = "dynamics"
# Per family and preset: config overrides. Shapes (latent size, channels, action size) come from data.
PRESETS: dict[str, dict[str, dict]] = {
    "deterministic": {"tiny": {"width": 16, "depth": 1, "horizon": 2}, "small": {"width": 96, "depth": 4, "horizon": 4},
                      "base": {"width": 192, "depth": 8, "horizon": 6}},
    "diffusion": {"tiny": {"width": 32, "depth": 1, "heads": 2}, "small": {}, "base": {"width": 384, "depth": 8}},
    "autoregressive": {"tiny": {"width": 32, "depth": 1, "heads": 2}, "small": {},
                       "base": {"width": 384, "depth": 8}},
}


def dynamics_config(family: str, preset: str, tokenizer: CausalVideoTokenizer, action_dim: int, **overrides) -> dict:
    import cosmos_sim.dynamics  # noqa: F401  (registers families)

    if family not in FAMILIES:
        raise UnknownChoiceError("dynamics model", family, FAMILIES)
    if preset not in PRESETS.get(family, {}):
        raise UnknownChoiceError(f"{family} preset", preset, PRESETS.get(family, {}))
    tc = tokenizer.config
    shapes = {"latent_size": tc.latent_size, "action_dim": action_dim}
    if family == "autoregressive":
        if tc.kind != "discrete":
            raise ValueError("the autoregressive family needs a discrete (FSQ) tokenizer, e.g. --preset dv8")
        shapes["fsq_levels"] = list(tc.fsq_levels)
    else:
        shapes["latent_channels"] = tc.latent_dim
    if family == "diffusion":  # our latents are normalized to unit std; EDM wants sigma_data = 0.5
        shapes["latent_scale"] = 0.5
    cfg_cls = FAMILIES[family][0]
    base = cfg_cls().to_dict()
    merged = {**base, **PRESETS[family][preset], **shapes, **overrides}
    return cfg_cls.from_dict({k: v for k, v in merged.items() if k in base}).to_dict()


class DynamicsTrainee(nn.Module):
    """What the trainer optimises: the dynamics family and the state head, side by side.

    The recurrent state head is unrolled over the window's future frames on its own predictions,
    from the true state at the last context frame, reading latents with noise added so it keeps
    working on the dynamics model's (imperfect) predicted latents.
    """

    def __init__(self, dynamics: nn.Module, head: StateHead, state_weight: float = 1.0, latent_noise: float = 0.2):
        super().__init__()
        self.dynamics, self.head, self.state_weight, self.latent_noise = dynamics, head, state_weight, latent_noise

    def training_loss(self, batch):
        loss, metrics = self.dynamics.training_loss(batch)
        z, s = batch["latents"], batch["states"]
        static_mse = ((self.head.static(z.flatten(0, 1)) - s.flatten(0, 1)) ** 2).mean()
        metrics = {**metrics, "state_mse": static_mse.detach()}
        total = loss + self.state_weight * static_mse
        if self.head.recurrent:
            K = self.dynamics.config.context
            prev, errs = s[:, K - 1], []
            for j in range(K, z.shape[1]):
                zj = z[:, j] + self.latent_noise * torch.randn_like(z[:, j])
                prev = self.head(zj, prev, batch["actions"][:, j - 1])
                errs.append(((prev - s[:, j]) ** 2).mean())
            rec = torch.stack(errs).mean()
            total = total + self.state_weight * rec
            metrics["state_rollout_mse"] = rec.detach()
        return total, metrics


def normalization(cache: dict, episodes: list[int], discrete: bool) -> dict[str, torch.Tensor]:
    fo = cache["frame_offsets"].tolist()
    frames = torch.cat([torch.arange(fo[e], fo[e + 1]) for e in episodes])
    z, s = cache["latents"][frames], cache["states"][frames]
    D = z.shape[1]
    if discrete:  # FSQ codes stay on their grid
        lm, ls = torch.zeros(D, 1, 1), torch.ones(D, 1, 1)
    else:
        lm = z.mean(dim=(0, 2, 3)).view(D, 1, 1)
        ls = z.std(dim=(0, 2, 3)).clamp_min(1e-3).view(D, 1, 1)
    return {"latent_mean": lm, "latent_std": ls, "state_mean": s.mean(0), "state_std": s.std(0).clamp_min(1e-3)}


def train_dynamics(data_dir: str | os.PathLike, tokenizer_path: str | os.PathLike, out: str | os.PathLike,
                   family: str = "deterministic", preset: str = "small", train_config: TrainConfig | None = None,
                   overrides: dict | None = None, resume: bool = False, device: str | None = None,
                   progress: bool = True, evaluate=None) -> dict:
    """Returns the trainer's result plus `world_model` (path of the exported file)."""
    data_dir, out = Path(data_dir), Path(out)
    train_config = train_config or TrainConfig()
    episodes = EpisodeDataset(data_dir)
    from cosmos_sim.worlds import get_world

    world = get_world(episodes.world)
    tok_path = resolve_checkpoint(tokenizer_path)
    tokenizer = CausalVideoTokenizer.load(tok_path)
    if tokenizer.config.image_size != episodes.spec.image_size[0]:
        from cosmos_sim.errors import DatasetMismatchError

        raise DatasetMismatchError(f"tokenizer is for {tokenizer.config.image_size}px frames, "
                                   f"{data_dir} holds {episodes.spec.image_size}")
    cfg = dynamics_config(family, preset, tokenizer, world.action_dim, **(overrides or {}))
    dev = device or ("cuda" if torch.cuda.is_available() else "cpu")
    cache = load_or_build_cache(data_dir, tokenizer, tok_path, out / "cache", device=dev, progress=progress)
    train_eps, held = split_episodes(len(episodes))
    stats = normalization(cache, train_eps, tokenizer.config.kind == "discrete")
    norm_cache = dict(cache)
    norm_cache["latents"] = (cache["latents"] - stats["latent_mean"]) / stats["latent_std"]
    norm_cache["states"] = (cache["states"] - stats["state_mean"]) / stats["state_std"]
    torch.manual_seed(train_config.seed)
    dyn = build_dynamics(family, cfg)
    K = cfg["context"]
    H = cfg.get("horizon", 1)
    windows = LatentWindows(norm_cache, K, H, train_eps)
    head = StateHead(tokenizer.config.latent_dim, tokenizer.config.latent_size, world.state_dim,
                     action_dim=world.action_dim, recurrent=True)
    trainee = DynamicsTrainee(dyn, head)
    collection = episodes.manifest.get("collection", {})
    info = {"data": str(data_dir), "tokenizer": str(tok_path), "held_out_episodes": held, "preset": preset,
            "backend": collection.get("backend", "mujoco"), "camera": collection.get("camera", "fixed")}
    trainer = Trainer(trainee, windows, train_config, out, kind=KIND,
                      model_config={"family": family, "dynamics": cfg, "head": head.config}, device=device,
                      progress=progress, extra_metadata=info, evaluate=evaluate)
    result = trainer.fit(resume=resume)
    ema = trainer.ema.to("cpu")
    model = WorldModel(tokenizer.cpu(), ema.dynamics, ema.head, world=world.name,
                       state_layout=[list(e) for e in world.state_layout.entries],
                       action_names=list(world.action_names), info=info | {"steps": trainer.step}, **stats)
    if trainer.rank == 0:
        result["world_model"] = str(model.save(out / FILE))
        result["parameters"] = sum(p.numel() for p in dyn.parameters())
        (out / "result.json").write_text(json.dumps({k: v for k, v in result.items() if k != "evals"}, indent=1,
                                                    default=str) + "\n")
    return result
