"""Train a tokenizer on a dataset with the shared trainer; evaluate PSNR/SSIM on held-out episodes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch

from cosmos_sim.data.dataset import EpisodeDataset, WindowDataset  # not the package: its collect needs policies
from cosmos_sim.frame_metrics import background_renderer, psnr, ssim
from cosmos_sim.tokenizer.model import KIND, CausalVideoTokenizer, TokenizerConfig, pixels_to_unit, unit_to_pixels
from cosmos_sim.training import TrainConfig, Trainer


def split_episodes(n: int, held_out: float = 0.1) -> tuple[list[int], list[int]]:
    """Train on the first episodes (by seed), hold out the last `held_out` share (at least one)."""
    k = max(1, int(round(n * held_out))) if n > 1 else 0
    return list(range(n - k)), list(range(n - k, n))


def clip_length(config: TokenizerConfig) -> int:
    return 1 + config.temporal if config.temporal > 1 else 2


@torch.no_grad()
def evaluate_tokenizer(model: CausalVideoTokenizer, data_dir: str | os.PathLike, episodes: list[int],
                       max_clips: int = 48, grid_path: str | os.PathLike | None = None,
                       device: str | torch.device = "cpu") -> dict:
    """Whole-frame PSNR, object-pixel PSNR and SSIM of reconstructions of held-out clips."""
    model = model.eval()
    L = clip_length(model.config)
    ds = WindowDataset(data_dir, context=L, horizon=0, stride=L, episodes=episodes)
    idx = np.linspace(0, len(ds) - 1, min(max_clips, len(ds))).astype(int)
    items = [ds[int(i)] for i in idx]
    frames = torch.stack([it["frames"] for it in items])  # uint8 [N, L, 3, H, W]
    x = pixels_to_unit(frames.to(device))
    rec = unit_to_pixels(model.decode(model.encode(x))).cpu()
    a, b = frames.float() / 255, rec.float() / 255
    bg = background_renderer(EpisodeDataset(data_dir).world, tuple(frames.shape[-2:]))
    np_frames = frames.permute(0, 1, 3, 4, 2).reshape(-1, *frames.shape[-2:], 3).numpy()
    ext = torch.stack([it["extrinsics"] for it in items]).reshape(-1, 4, 4).numpy()
    fov = torch.stack([it["fovy"] for it in items]).reshape(-1).numpy()
    masks = torch.from_numpy(bg.masks(np_frames, ext, fov)).view(*frames.shape[:2], *frames.shape[-2:])
    bg.close()
    result = {
        "psnr": float(psnr(a, b).mean()),
        "psnr_objects": float(psnr(a, b, mask=masks)[masks.flatten(2).any(-1)].mean()),
        # MSE pooled over every object pixel of every frame (frames with a few pixels weigh little)
        "psnr_objects_pooled": float(10 * torch.log10(1 / ((a - b) ** 2).mean(2)[masks].mean().clamp_min(1e-10))),
        "ssim": float(ssim(a, b).mean()),
        "clips": len(items),
        "object_pixel_share": float(masks.float().mean()),
    }
    if grid_path is not None:
        from cosmos_sim.video import grid, save_png

        n = min(6, len(items))
        top = [frames[i, -1].permute(1, 2, 0).numpy() for i in range(n)]
        bottom = [rec[i, -1].permute(1, 2, 0).numpy() for i in range(n)]
        save_png(grid_path, grid([top, bottom], labels=[["input"] * n, ["decoded"] * n], scale=3))
    return result


def train_tokenizer(data_dir: str | os.PathLike, out: str | os.PathLike, config: TokenizerConfig | str,
                    train_config: TrainConfig, resume: bool = False, progress: bool = True,
                    device: str | None = None) -> dict:
    """Train, evaluate on held-out episodes and write `out/result.json`. `config` may be a preset name
    (sized for the dataset's frames)."""
    from cosmos_sim.tokenizer.model import preset

    data_dir, out = Path(data_dir), Path(out)
    episodes = EpisodeDataset(data_dir)
    if isinstance(config, str):
        config = preset(config, image_size=episodes.spec.image_size[0])
    if tuple(episodes.spec.image_size) != (config.image_size, config.image_size):
        from cosmos_sim.errors import DatasetMismatchError

        raise DatasetMismatchError(f"{data_dir} holds {episodes.spec.image_size} frames; the tokenizer is for "
                                   f"{config.image_size}x{config.image_size}")
    train_eps, held = split_episodes(len(episodes))
    windows = WindowDataset(data_dir, context=clip_length(config), horizon=0, episodes=train_eps)

    def evaluate(model, step, run_dir):
        dev = next(model.parameters()).device
        return evaluate_tokenizer(model, data_dir, held, grid_path=Path(run_dir) / f"recon_step{step:08d}.png",
                                  device=dev)

    torch.manual_seed(train_config.seed)
    model = CausalVideoTokenizer(config)
    trainer = Trainer(model, windows, train_config, out, kind=KIND, model_config=config.to_dict(), device=device,
                      evaluate=evaluate, progress=progress,
                      extra_metadata={"data": str(data_dir), "world": episodes.world, "held_out_episodes": held})
    result = trainer.fit(resume=resume)
    result["parameters"] = sum(p.numel() for p in model.parameters())
    if trainer.rank == 0:
        (out / "result.json").write_text(json.dumps(result, indent=1) + "\n")
    return result


def summary_line(result: dict, out) -> str:
    """What `cosmos-sim train tokenizer` prints when it is done."""
    ev = result["eval"]
    return (f"{out}: step {result['step']}, held-out PSNR {ev['psnr']:.2f} dB (objects {ev['psnr_objects']:.2f} dB), "
            f"SSIM {ev['ssim']:.3f}; reconstruction grids in {out}")
