"""Digital baseline codec: bit-exact round trip, MCS choice, CRC failure path, per-symbol noise, shapes, save/load."""
import itertools
import math

import pytest
import torch

from common.tomlconfig import ConfigError
from dekag.digital import (
    DigitalCodec,
    DigitalCodecConfig,
    LatentQuantiser,
    frame_layout,
    select_mcs,
)
from dekag.digital.mcs import MAX_INFO_BITS, mcs_table
from dekag.digital.quantiser import dct_matrix
from dekag.jscc import CodecConfig, Condition, ConditionError, ShapeError


def _latents(n, shape=(4, 8, 8), seed=0):
    g = torch.Generator().manual_seed(seed)
    scale = torch.linspace(0.2, 3.0, shape[0])[:, None, None]
    return torch.randn(n, *shape, generator=g) * scale + torch.arange(shape[0])[:, None, None]


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """LDPC decoding is many small ops: one thread avoids oversubscribing a shared CPU."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def codec():
    c = DigitalCodec(DigitalCodecConfig())
    c.set_latent_stats(_latents(256))
    return c


def test_noiseless_round_trip_is_bit_exact_for_every_mcs(codec):
    table = mcs_table(codec.config.mcs_table)
    snr = torch.tensor([m.threshold_snr_db + codec.config.margin_db + 1e-6 for m in table], dtype=torch.float64)  # one each
    z = _latents(len(table), seed=1)
    cond = Condition(snr, torch.full_like(snr, 100e-9))
    rep = codec.decode_report(codec.encode(z, cond), 1e-4, cond)
    assert rep.mcs_index.tolist() == list(range(len(table)))
    assert rep.failed_codewords.sum() == 0
    assert torch.equal(rep.latent, codec.quantised(z, cond))
    # more payload bits → a closer latent
    err = (rep.latent - z).square().flatten(1).mean(1)
    assert bool((err[1:] < err[:-1]).all()), err


def test_encode_gives_k_complex_symbols_of_unit_average_power(codec):
    for z in (_latents(16, seed=2), torch.zeros(4, 4, 8, 8)):  # a constant latent too (scrambling)
        for snr in (0.0, 12.0, 25.0):
            sym = codec.encode(z, (snr, 1e-7))
            assert sym.shape == (len(z), 128) and sym.dtype == torch.complex64
            power = sym.abs().square().mean(1)
            assert 0.75 < float(power.min()) and float(power.max()) < 1.3, (snr, power)
            assert abs(float(power.mean()) - 1) < 0.12


def test_mcs_is_monotonic_in_snr_and_margin_backs_off():
    cfg = DigitalCodecConfig()
    snrs = [s / 4 for s in range(-40, 121)]
    chosen = [select_mcs(cfg.mcs_table, s, cfg.margin_db) for s in snrs]
    eff = [m.spectral_efficiency for m in chosen]
    assert all(b >= a for a, b in itertools.pairwise(eff))
    assert chosen[0].index == 0 and chosen[-1].index == len(cfg.mcs_table) - 1
    assert len({m.index for m in chosen}) == len(cfg.mcs_table)
    for s in snrs:  # a larger margin never picks a higher rate
        assert select_mcs(cfg.mcs_table, s, 3.0).index <= select_mcs(cfg.mcs_table, s, 0.0).index
    for s, m in zip(snrs, chosen):  # the highest row allowed: its threshold is met, the next one's is not
        assert m.index == 0 or m.threshold_snr_db <= s - cfg.margin_db
        if m.index + 1 < len(cfg.mcs_table):
            assert cfg.mcs_table[m.index + 1][2] > s - cfg.margin_db


def test_failed_crc_decodes_to_the_dataset_mean_and_is_reported(codec):
    z = _latents(3, seed=3)
    cond = (20.0, 1e-7)
    sym = codec.encode(z, cond)
    garbage = torch.randn(sym.shape, generator=torch.Generator().manual_seed(4)).to(torch.complex64)
    rep = codec.decode_report(garbage, 0.01, cond)
    assert rep.failed_codewords.tolist() == rep.num_codewords.tolist() == [1, 1, 1]
    assert rep.codeword_failure_rate == 1.0
    torch.testing.assert_close(rep.latent, codec.mean_latent().expand(3, -1, -1, -1), atol=1e-5, rtol=0)
    torch.testing.assert_close(codec.mean_latent(), _latents(256).mean(0), atol=1e-5, rtol=0)


def test_per_symbol_noise_variance_reaches_the_demapper(codec):
    """Half the symbols replaced by noise: told they are unreliable the LDPC code fills them in; told they
    are as good as the rest, decoding fails."""
    z, cond = _latents(4, seed=5), (-1.0, 1e-7)  # QPSK 1/5
    sym = codec.encode(z, cond)
    hit = torch.zeros(128, dtype=torch.bool)
    hit[::2] = True
    bad = sym.clone()
    bad[:, hit] = 2 * torch.randn(4, 64, generator=torch.Generator().manual_seed(6)).to(torch.complex64)
    nv = torch.where(hit, 1e3, 1e-3).expand(4, -1)
    honest = codec.decode_report(bad, nv, cond)
    assert honest.failed_codewords.sum() == 0 and torch.equal(honest.latent, codec.quantised(z, cond))
    assert codec.decode_report(bad, 1e-3, cond).failed_codewords.sum() == 4


def test_another_latent_shape_sets_k_and_segments_into_codewords():
    jscc_cfg = CodecConfig(latent_height=32, latent_width=32, downsample=4)
    cfg = DigitalCodecConfig.matching(jscc_cfg)
    assert cfg.num_symbols == jscc_cfg.num_symbols == 2048 and cfg.latent_shape == (4, 32, 32)
    codec = DigitalCodec(cfg)
    codec.set_latent_stats(_latents(32, cfg.latent_shape))
    top = mcs_table(cfg.mcs_table)[-1]
    lay = frame_layout(top, cfg.num_symbols)
    assert lay.num_codewords == 2 and max(lay.info_bits) <= MAX_INFO_BITS and sum(lay.symbols) == 2048
    z = _latents(2, cfg.latent_shape, seed=7)
    cond = (top.threshold_snr_db + cfg.margin_db, 1e-7)
    sym = codec.encode(z, cond)
    assert sym.shape == (2, 2048)
    rep = codec.decode_report(sym, 1e-4, cond)
    assert rep.num_codewords.tolist() == [2, 2] and rep.failed_codewords.sum() == 0
    assert torch.equal(rep.latent, codec.quantised(z, cond))
    # Stable Diffusion's 4×64×64 at the JSCC codec's downsample 4: K = 8192, every row fits 5G LDPC blocks
    big = DigitalCodecConfig.matching(CodecConfig(latent_height=64, latent_width=64, downsample=4))
    assert big.num_symbols == 8192
    for mcs in mcs_table(big.mcs_table):
        lay = frame_layout(mcs, big.num_symbols)
        assert sum(lay.symbols) == 8192 and max(lay.info_bits) <= MAX_INFO_BITS
        assert max(lay.symbols) - min(lay.symbols) <= 1
    assert frame_layout(mcs_table(big.mcs_table)[8], 8192).num_codewords == 5   # 64QAM 3/4
    # codeword 1 (odd symbols) destroyed: only its part of the latent falls back to the mean
    bad = sym.clone()
    bad[:, 1::2] = -bad[:, 1::2]
    part = codec.decode_report(bad, 1e-4, cond)
    assert part.failed_codewords.tolist() == [1, 1]
    same = torch.isclose(part.latent, rep.latent, atol=1e-5)
    assert 0.0 < float(same.float().mean()) < 1.0


def test_quantiser_dct_is_orthonormal_and_allocation_spends_the_budget():
    d = dct_matrix(8)
    torch.testing.assert_close(d @ d.T, torch.eye(8, dtype=torch.float64))
    q = LatentQuantiser((4, 8, 8))
    data = _latents(128)
    q.set_latent_stats(data)
    torch.testing.assert_close(q.inverse_transform(q.forward_transform(data)), data, atol=1e-5, rtol=0)
    assert bool((q.distortion[1:] < q.distortion[:-1]).all())
    for budget in (28, 100, 256, 700):
        alloc = q.allocate(budget)
        assert int(alloc.bits.sum()) == alloc.num_bits == budget
    alloc = q.allocate(100)
    var = q.coef_std.flatten().square()
    assert float(var[alloc.bits > 0].min()) >= float(var[alloc.bits == 0].max())  # bits go to high variance
    assert int(q.allocate(10**6).bits.max()) == q.max_bits


def test_fit_picks_the_transform_that_suits_the_latents():
    """Smooth latents (one random level per channel and a faint ripple: energy in the DC coefficient) go to the
    DCT; latents with a few strong independent elements (DCT would spread them over every coefficient) go to the
    identity. Each pick quantises its latents with less error than the other transform."""
    g = torch.Generator().manual_seed(3)
    smooth = torch.randn(256, 4, 1, 1, generator=g) * 3 + 0.05 * torch.randn(256, 4, 8, 8, generator=g)
    spiky = 0.02 * torch.randn(256, 4, 8, 8, generator=g)
    spiky[:, :, 2, 5] += 3 * torch.randn(256, 4, generator=g)
    spiky[:, :, 6, 1] += 3 * torch.randn(256, 4, generator=g)
    for latents, expected in ((smooth, "dct"), (spiky, "identity")):
        picked = DigitalCodec.fit(DigitalCodecConfig(), latents)
        other = DigitalCodec(DigitalCodecConfig(transform="identity" if expected == "dct" else "dct"))
        other.set_latent_stats(latents)
        assert picked.config.transform == expected
        assert picked.quantisation_error_db(latents) < other.quantisation_error_db(latents) - 1.0


def test_save_load_round_trip(tmp_path, codec):
    path = codec.save(tmp_path / "digital.safetensors")
    loaded = DigitalCodec.load(path)
    assert loaded.config == codec.config
    z, cond = _latents(2, seed=8), (8.0, 1e-7)
    assert torch.equal(loaded.encode(z, cond), codec.encode(z, cond))
    assert torch.equal(loaded.quantised(z, cond), codec.quantised(z, cond))


def test_config_toml_round_trip_and_validation():
    cfg = DigitalCodecConfig(margin_db=2.5, ldpc_iterations=8)
    back = DigitalCodecConfig.from_toml_str(cfg.to_toml_str())
    assert back == cfg and back.mcs_table == cfg.mcs_table
    with pytest.raises(ConfigError, match="code rate"):
        DigitalCodecConfig(mcs_table=((2, 0.1, -5.0),))
    with pytest.raises(ConfigError, match="increase"):
        DigitalCodecConfig(mcs_table=((4, 0.5, 7.0), (2, 0.5, 8.0)))
    with pytest.raises(ConfigError, match="too small"):
        DigitalCodecConfig(num_symbols=60)
    with pytest.raises(ConfigError, match="bits_per_symbol"):
        DigitalCodecConfig(mcs_table=((3, 0.5, 1.0),))


def test_bad_inputs_raise(codec):
    with pytest.raises(ShapeError):
        codec.encode(torch.zeros(1, 4, 8, 9), (10.0, 1e-7))
    sym = codec.encode(_latents(2), (10.0, 1e-7))
    with pytest.raises(ShapeError):
        codec.decode(sym[:, :64], 0.1, (10.0, 1e-7))
    with pytest.raises(ShapeError):
        codec.decode(sym, torch.zeros(2), (10.0, 1e-7))
    with pytest.raises(ShapeError):
        codec.decode(sym, torch.ones(2, 7), (10.0, 1e-7))
    with pytest.raises(ConditionError):
        codec.encode(_latents(2), (math.nan, 1e-7))
    with pytest.raises(ConditionError):
        codec.decode(sym, 0.1, (torch.tensor([1.0, 2.0, 3.0]), 1e-7))
    a = codec.decode(sym, 0.1, (10.0, 1e-7))
    assert torch.equal(a, codec.decode(sym, torch.full((2,), 0.1), (10.0, 1e-7)))
    assert torch.equal(a, codec.decode(sym, torch.full((2, 128), 0.1), (10.0, 1e-7)))


def test_docstring_examples_run():
    import doctest

    import dekag.digital.codec
    import dekag.digital.mcs
    for module in (dekag.digital.mcs, dekag.digital.codec):
        assert doctest.testmod(module).failed == 0, module.__name__
