"""cosmos_sim.video: tiling, labels, upscaling, atomic MP4 and PNG writes."""

import numpy as np
import pytest

from cosmos_sim import video


def solid(h, w, rgb):
    f = np.empty((h, w, 3), np.uint8)
    f[:] = rgb
    return f


def test_upscale_is_nearest_neighbour():
    f = np.arange(2 * 2 * 3, dtype=np.uint8).reshape(2, 2, 3)
    u = video.upscale(f, 4)
    assert u.shape == (8, 8, 3)
    for i in range(2):
        for j in range(2):
            assert (u[4 * i:4 * i + 4, 4 * j:4 * j + 4] == f[i, j]).all()
    with pytest.raises(ValueError):
        video.upscale(f, 0)


def test_tile_side_by_side_places_frames_and_gap():
    a, b = solid(10, 12, (255, 0, 0)), solid(10, 12, (0, 0, 255))
    t = video.tile([a, b], gap=3, gap_color=(7, 7, 7))
    assert t.shape == (10, 12 + 3 + 12, 3)
    assert (t[:, :12] == a).all()
    assert (t[:, 12:15] == 7).all()
    assert (t[:, 15:] == b).all()


def test_tile_wraps_into_grid_and_pads_missing_cells():
    frames = [solid(4, 4, (c, c, c)) for c in (10, 20, 30)]
    t = video.tile(frames, cols=2, gap=1, gap_color=(0, 0, 0))
    assert t.shape == (4 + 1 + 4, 4 + 1 + 4, 3)
    assert (t[:4, :4] == 10).all() and (t[:4, 5:] == 20).all() and (t[5:, :4] == 30).all()
    assert (t[5:, 5:] == 0).all()  # empty cell


def test_grid_handles_mixed_sizes_and_scale():
    g = video.grid([[solid(2, 2, (1, 1, 1)), solid(3, 5, (2, 2, 2))], [solid(4, 1, (3, 3, 3))]], gap=0, scale=2)
    assert g.shape == (2 * 3 + 2 * 4, 2 * 2 + 2 * 5, 3)
    assert (g[:6, 4:] == 2).all()


def test_labels_add_a_text_strip_and_keep_the_frame():
    f = solid(64, 128, (200, 100, 50))
    out = video.label(f, "MuJoCo t=3")
    strip = out.shape[0] - 64
    assert out.shape[1] == 128 and strip > 5
    assert (out[strip:] == f).all()
    assert out[:strip].max() > 200  # white text was drawn
    bottom = video.label(f, "x", position="bottom")
    assert (bottom[:64] == f).all()
    t = video.tile([f, f], labels=["MuJoCo", "PyBullet"], gap=2)
    assert t.shape == (64 + strip, 2 * 128 + 2, 3)
    with pytest.raises(ValueError, match="labels"):
        video.tile([f, f], labels=["only one"])


def test_as_frame_checks_and_converts():
    assert video.as_frame(np.zeros((4, 4), np.uint8)).shape == (4, 4, 3)
    assert video.as_frame(np.ones((4, 4, 4), np.float32)).max() == 255
    with pytest.raises(ValueError, match="frame"):
        video.as_frame(np.zeros((4, 4, 5)))


def test_mp4_roundtrip_with_odd_size(tmp_path):
    frames = [solid(33, 47, (20 * i, 100, 200 - 20 * i)) for i in range(8)]
    path = video.write_mp4(tmp_path / "v.mp4", frames, fps=10)
    back = video.read_video(path)
    assert back.shape == (8, 34, 48, 3)  # padded to even sizes for H.264
    err = np.abs(back[:, :33, :47].astype(int) - np.stack(frames).astype(int)).mean()
    assert err < 6
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.mp4"]  # no temp file left


def test_mp4_write_is_atomic_on_error(tmp_path):
    path = tmp_path / "v.mp4"

    def frames_then_crash():
        for i in range(5):
            yield solid(16, 16, (i, i, i))
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        video.write_mp4(path, frames_then_crash())
    assert list(tmp_path.iterdir()) == []

    # An existing file survives a failed rewrite untouched.
    video.write_mp4(path, [solid(16, 16, (9, 9, 9))] * 3)
    before = path.read_bytes()
    with pytest.raises(ValueError, match="one size"):
        video.write_mp4(path, [solid(16, 16, (0, 0, 0)), solid(8, 8, (0, 0, 0))])
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["v.mp4"]


def test_writer_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match=".mp4"):
        video.VideoWriter(tmp_path / "v.avi")
    with pytest.raises(ValueError, match="fps"):
        video.VideoWriter(tmp_path / "v.mp4", fps=0)
    with pytest.raises(ValueError, match="no frames"):
        video.write_mp4(tmp_path / "v.mp4", [])
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(FileNotFoundError):
        video.read_video(tmp_path / "missing.mp4")


def test_png_roundtrip(tmp_path):
    from PIL import Image

    img = video.tile([solid(8, 8, (255, 0, 0)), solid(8, 8, (0, 255, 0))], gap=0)
    path = video.save_png(tmp_path / "sub" / "grid.png", img)
    assert (np.asarray(Image.open(path)) == img).all()
    assert [p.name for p in path.parent.iterdir()] == ["grid.png"]


def test_hold_last_pads_sequences():
    a, b = video.hold_last([[1, 2, 3], [4]])
    assert a == [1, 2, 3] and b == [4, 4, 4]
