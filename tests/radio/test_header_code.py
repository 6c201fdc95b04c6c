"""Header channel code: the stored generator is Sionna's Polar5G encoder; fast path and SCL decode; noise is refused."""
import numpy as np
import pytest

from radio.header import FrameHeader
from radio.header_code import N_CODED, PolarHeaderCode


def _bpsk_llr(coded: np.ndarray, es_n0_db: float, rng: np.random.Generator) -> np.ndarray:
    a = np.sqrt(10 ** (es_n0_db / 10))
    y = a * (1.0 - 2.0 * coded) + rng.standard_normal(coded.shape) * np.sqrt(0.5)
    return -4.0 * a * y  # ln P(1)/P(0)


def test_stored_generator_is_sionnas_polar5g_encoder():
    torch = pytest.importorskip("torch")
    from sionna.phy.fec.polar import Polar5GEncoder

    code = PolarHeaderCode()
    u = np.random.default_rng(0).integers(0, 2, (64, 80)).astype(np.uint8)
    ref = Polar5GEncoder(80, N_CODED)(torch.from_numpy(u).float()).numpy().astype(np.uint8)
    np.testing.assert_array_equal(code.encode(u), ref)


def test_fast_path_and_list_decoder_recover_headers():
    rng = np.random.default_rng(1)
    code = PolarHeaderCode()
    bits = np.stack([FrameHeader(frame_id=i, payload_len=i + 1, numerology_id=0).to_bits() for i in range(16)])
    coded = code.encode(bits)
    dec, ok = code.decode_fast(_bpsk_llr(coded, 8.0, rng))  # ~0.1 hard errors per block: fast path
    assert ok.all() and (dec == bits).all()
    llr = _bpsk_llr(coded, -4.0, rng)  # ~100 hard errors per block: only the list decoder can do it
    assert not code.decode_fast(llr)[1].any()
    dec, ok = code.decode(llr)
    assert ok.all() and (dec == bits).all()


def test_noise_is_never_taken_by_the_fast_path_and_rarely_by_the_list_decoder():
    rng = np.random.default_rng(2)
    code = PolarHeaderCode()
    noise = 2.0 * rng.standard_normal((4000, N_CODED)).astype(np.float32)
    assert not code.decode_fast(noise)[1].any()
    bits, ok = code.decode(noise[:128])
    assert ok.sum() <= 4  # CRC-11 after list 8: ~1 in 300
    assert not any(FrameHeader.from_bits(b) is not None for b in bits[ok])  # the outer CRC-16 catches them


def test_decode_rejects_bad_shapes():
    with pytest.raises(ValueError):
        PolarHeaderCode().decode(np.zeros(N_CODED))
