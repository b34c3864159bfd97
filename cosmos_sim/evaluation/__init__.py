"""Metrics, rollouts, comparisons and reports."""

from cosmos_sim.evaluation.metrics import mse, psnr, ssim, to_unit

__all__ = ["mse", "psnr", "ssim", "to_unit"]
