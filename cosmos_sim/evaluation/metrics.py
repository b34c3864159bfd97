"""Image metrics in batched torch (PSNR, SSIM, MSE), computed in-house: they live in `cosmos_sim.frame_metrics`,
below training and evaluation, since the tokenizer's training scores its held-out frames with them too.
"""

from cosmos_sim.frame_metrics import gaussian_window, mse, psnr, ssim, to_unit

__all__ = ["gaussian_window", "mse", "psnr", "ssim", "to_unit"]
