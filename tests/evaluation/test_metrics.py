"""PSNR and SSIM against direct numpy computations written from the definitions."""

import numpy as np
import pytest
import torch

from cosmos_sim.evaluation.metrics import psnr, ssim


def ssim_numpy(a: np.ndarray, b: np.ndarray, data_range=1.0, size=11, sigma=1.5) -> float:
    """Wang et al. 2004, loop over every valid window position and channel."""
    r = np.arange(size) - (size - 1) / 2
    g = np.exp(-(r**2) / (2 * sigma**2))
    w = np.outer(g, g) / np.outer(g, g).sum()
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    vals = []
    for c in range(a.shape[0]):
        for i in range(a.shape[1] - size + 1):
            for j in range(a.shape[2] - size + 1):
                pa, pb = a[c, i:i + size, j:j + size], b[c, i:i + size, j:j + size]
                ma, mb = (w * pa).sum(), (w * pb).sum()
                va, vb = (w * (pa - ma) ** 2).sum(), (w * (pb - mb) ** 2).sum()
                cov = (w * (pa - ma) * (pb - mb)).sum()
                vals.append(((2 * ma * mb + c1) * (2 * cov + c2)) / ((ma**2 + mb**2 + c1) * (va + vb + c2)))
    return float(np.mean(vals))


def structured(seed: int, h=24, w=20) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = np.zeros((3, h, w))
    yy, xx = np.mgrid[0:h, 0:w]
    img += 0.3 + 0.2 * np.sin(xx / 3.0 + seed)[None]
    r0, c0 = rng.integers(2, h - 8), rng.integers(2, w - 8)
    img[:, r0:r0 + 6, c0:c0 + 6] = rng.uniform(0, 1, (3, 1, 1))
    return np.clip(img, 0, 1)


@pytest.mark.parametrize("kind", ["random", "structured"])
def test_ssim_matches_direct_numpy(kind):
    rng = np.random.default_rng(1)
    if kind == "random":
        a = rng.uniform(0, 1, (2, 3, 16, 18))
        b = np.clip(a + rng.normal(0, 0.1, a.shape), 0, 1)
    else:
        a = np.stack([structured(0), structured(1)])
        b = np.stack([structured(0) * 0.9 + 0.05, np.roll(structured(1), 2, axis=2)])
    got = ssim(torch.from_numpy(a), torch.from_numpy(b)).numpy()
    want = [ssim_numpy(a[i], b[i]) for i in range(len(a))]
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
    assert ssim(torch.from_numpy(a), torch.from_numpy(a)).numpy() == pytest.approx([1.0, 1.0])


def test_psnr_matches_definition_and_mask():
    rng = np.random.default_rng(2)
    a = rng.uniform(0, 255, (4, 3, 8, 8))
    b = rng.uniform(0, 255, (4, 3, 8, 8))
    want = 10 * np.log10(255.0**2 / ((a - b) ** 2).mean(axis=(1, 2, 3)))
    np.testing.assert_allclose(psnr(torch.from_numpy(a), torch.from_numpy(b), data_range=255).numpy(), want)
    mask = np.zeros((4, 8, 8), bool)
    mask[:, 2:5, 1:7] = True
    want_m = [10 * np.log10(255.0**2 / ((a[i] - b[i])[:, mask[i]] ** 2).mean()) for i in range(4)]
    got_m = psnr(torch.from_numpy(a), torch.from_numpy(b), data_range=255, mask=torch.from_numpy(mask))
    np.testing.assert_allclose(got_m.numpy(), want_m)


def test_shape_errors_are_clear():
    with pytest.raises(ValueError, match="differ in shape"):
        ssim(torch.zeros(1, 3, 16, 16), torch.zeros(1, 3, 16, 15))
    with pytest.raises(ValueError, match=r"\[..., C, H, W\]"):
        ssim(torch.zeros(16, 16), torch.zeros(16, 16))


def test_ssim_agrees_with_scikit_image():
    """An independent implementation: scikit-image's Gaussian SSIM (sigma 1.5, 11x11 at truncate 3.5,
    population covariances, K1 0.01, K2 0.03, per-channel mean over the valid region) on real-sized frames."""
    metrics = pytest.importorskip("skimage.metrics", reason="scikit-image is a test extra")
    rng = np.random.default_rng(3)
    a = np.stack([structured(s, 64, 64) for s in range(3)])
    b = np.clip(np.stack([a[0] + rng.normal(0, 0.05, a[0].shape), np.roll(a[1], 3, axis=1), a[2] * 0.7 + 0.1]), 0, 1)
    got = ssim(torch.from_numpy(a), torch.from_numpy(b)).numpy()
    want = [metrics.structural_similarity(a[i], b[i], data_range=1.0, channel_axis=0, gaussian_weights=True,
                                          sigma=1.5, use_sample_covariance=False) for i in range(len(a))]
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-9)
    assert len(set(np.round(want, 3))) == 3  # three distinct scores: the check is not of a constant
