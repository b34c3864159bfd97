import pytest
import torch

from cosmos_sim.errors import CheckpointError, ConfigMismatchError, UnknownChoiceError
from cosmos_sim.tokenizer import CausalVideoTokenizer, Stream, TokenizerConfig, preset
from cosmos_sim.tokenizer.model import haar, ihaar

TINY = dict(channels=(8, 16), blocks=1, image_size=32)


def model(**kw):
    torch.manual_seed(0)
    cfg = TokenizerConfig(**{**TINY, **kw})
    m = CausalVideoTokenizer(cfg).eval()
    with torch.no_grad():  # make the temporal convs mix frames (they start as identity)
        for mod in m.modules():
            if isinstance(mod, torch.nn.Conv3d):
                mod.weight.normal_(0, 0.1)
    return m


@pytest.mark.parametrize("kw", [dict(), dict(kind="discrete", fsq_levels=(5, 5, 5)), dict(attention=True),
                                dict(temporal=4), dict(spatial=16, channels=(8, 16, 16))])
def test_causality_and_first_frame_alone(kw):
    m = model(**kw)
    k = m.config.temporal
    T = 1 + 3 * k if k > 1 else 5
    x = torch.rand(2, T, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        z = m.encode(x)
        for t in range(1, T):
            x2 = x.clone()
            x2[:, t:] = torch.rand_like(x2[:, t:])
            z2 = m.encode(x2)
            first_changed = 1 + (t - 1) // k if k > 1 else t  # latent holding frame t
            assert torch.equal(z[:, :first_changed], z2[:, :first_changed]), t
            assert not torch.allclose(z[:, first_changed:], z2[:, first_changed:])
        alone = m.encode(x[:, :1])
        assert torch.allclose(alone, z[:, :1], atol=1e-6)


def test_streaming_matches_whole_clip():
    m = model(attention=True)
    x = torch.rand(1, 4, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        z, y = m.encode(x), m.decode(m.encode(x))
        se, sd = Stream(), Stream()
        zs = torch.cat([m.encode(x[:, t:t + 1], se) for t in range(4)], 1)
        ys = torch.cat([m.decode(z[:, t:t + 1], sd) for t in range(4)], 1)
    assert torch.allclose(zs, z, atol=1e-5) and torch.allclose(ys, y, atol=1e-5)


@pytest.mark.parametrize("attention", [False, True])
def test_a_restarted_row_decodes_as_a_first_frame_and_the_others_stream_on(attention):
    """Where a learned world's camera jumps, the decoder drops the old viewpoint for that row only."""
    m = model(attention=attention)
    z = m.encode(torch.rand(2, 4, 3, 32, 32) * 2 - 1)
    with torch.no_grad():
        whole = m.decode(z)
        sd = Stream()
        m.decode(z[:, :2], sd)
        sd.restart = torch.tensor([True, False])
        y2 = m.decode(z[:, 2:3], sd)
        sd.restart = None
        y3 = m.decode(z[:, 3:4], sd)
        fresh = m.decode(z[:1, 2:4])  # row 0 from frame 2 on, as if that were its first frame
    assert torch.allclose(y2[1], whole[1, 2:3], atol=1e-5) and torch.allclose(y3[1], whole[1, 3:4], atol=1e-5)
    assert torch.allclose(y2[0], fresh[0, :1], atol=1e-5) and torch.allclose(y3[0], fresh[0, 1:], atol=1e-5)
    assert not torch.allclose(y2[0], whole[0, 2:3], atol=1e-3)


def test_haar_is_invertible():
    x = torch.randn(3, 5, 16, 16)
    assert torch.allclose(ihaar(haar(x)), x, atol=1e-6)
    assert torch.allclose(haar(x).norm(), x.norm(), rtol=1e-5)  # orthonormal


def test_fsq_codes_and_indices_round_trip():
    m = model(kind="discrete", fsq_levels=(8, 5, 5))
    z = m.encode(torch.rand(2, 2, 3, 32, 32) * 2 - 1)
    idx = m.fsq.codes_to_indices(z.movedim(-3, -1))
    assert idx.shape == (2, 2, 4, 4) and idx.min() >= 0 and idx.max() < 8 * 5 * 5
    assert torch.equal(m.fsq.indices_to_codes(idx).movedim(-1, -3).float(), z)


def test_save_load_round_trip_and_mismatch(tmp_path):
    m = model(kind="discrete", fsq_levels=(5, 5, 5))
    path = tmp_path / "tok.safetensors"
    m.save(path)
    m2 = CausalVideoTokenizer.load(path)
    x = torch.rand(1, 3, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        assert torch.equal(m(x), m2(x))
    with pytest.raises(ConfigMismatchError, match="kind: checkpoint has 'discrete', caller has 'continuous'"):
        CausalVideoTokenizer.load(path, config=TokenizerConfig(**TINY))
    with pytest.raises(CheckpointError, match="never unpickles"):
        torch.save(m.state_dict(), tmp_path / "tok.pt")
        CausalVideoTokenizer.load(tmp_path / "tok.pt")
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    with pytest.raises(CheckpointError):
        CausalVideoTokenizer.load(cut)


def test_bad_config_and_input():
    with pytest.raises(UnknownChoiceError, match="cv8"):
        preset("cv9")
    with pytest.raises(ValueError, match="spatial"):
        TokenizerConfig(spatial=4)
    with pytest.raises(ValueError, match=r"\[B, T, 3, 32, 32\]"):
        model().encode(torch.zeros(1, 3, 32, 32))
    with pytest.raises(ValueError, match="1 \\+ 4k"):
        model(temporal=4).encode(torch.zeros(1, 3, 3, 32, 32))
