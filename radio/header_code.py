"""Channel code of the frame header: 5G polar, k = 80, n = 640, decoded by Sionna's SCL list decoder.

The 80 header bits (64 field bits + the header's own CRC-16, :mod:`radio.header`) are the information
word of ``sionna.phy.fec.polar.Polar5GEncoder(80, 640)`` (3GPP uplink polar code: it appends its
internal CRC-11, then rate-matches the 1024-bit mother code to 640 bits by puncturing). The 640 coded
bits go out as BPSK, one per header resource element. Why polar SCL with an outer CRC-16: on the same
640 resource elements it needs ~10 dB less SNR than the 8× repetition code it replaced
(``bench/header_code.py``), and Polar5G's CRC-11 alone false-accepts noise (about 1 in 300 blocks at list
8, ``/work/shared/reference/fec-and-sweeps-facts.md``): the outer CRC-16 makes a wrong header ~2⁻¹⁶ rarer.

* **Encoding** is a GF(2) product with the code's generator matrix, stored in
  ``header_polar_generator.json`` (built from Sionna's encoder; a test checks they agree), so the
  transmitter never imports Sionna.
* **Decoding** first tries a fast path: for each of a few fixed information sets (80 coded
  positions that determine the information word), read the word off the hard decisions and re-encode
  it; if the nearest of these codewords differs from the hard decisions in at most
  :data:`FAST_PATH_MAX_FLIPS` positions it is taken (bounded-distance decoding far inside half the
  code's minimum distance, which is ≥ 32 here; sampled low-weight codewords weigh 88). Otherwise
  Sionna's ``Polar5GDecoder(dec_type="SCL", list_size=8)`` decodes it; its CRC-11 status is returned.
  Sionna (with torch, ~3 s) is imported on the first block that needs the list decoder.

LLRs follow Sionna's convention: ``ln P(b=1)/P(b=0)`` (positive means bit 1).
"""
from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path

import numpy as np

from radio.jit import njit

K_BITS = 80
N_CODED = 640
LIST_SIZE = 8
FAST_PATH_MAX_FLIPS = 8
_FAST_PATH_SETS = 4
_GENERATOR_FILE = Path(__file__).with_name("header_polar_generator.json")


def _load_generator() -> np.ndarray:
    """Generator matrix, shape (K_BITS, N_CODED), uint8 0/1."""
    spec = json.loads(_GENERATOR_FILE.read_text())
    rows = [np.unpackbits(np.frombuffer(bytes.fromhex(h), np.uint8))[:spec["n"]] for h in spec["rows_hex"]]
    g = np.array(rows, np.uint8)
    if g.shape != (K_BITS, N_CODED):
        raise ValueError(f"{_GENERATOR_FILE.name}: expected shape ({K_BITS}, {N_CODED}), got {g.shape}")
    return g


def _information_set(g: np.ndarray, order: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First ``k`` columns of ``g`` (in ``order``) that are linearly independent over GF(2), and the
    inverse of ``g`` restricted to them: ``u = c[cols] @ inv % 2`` for a codeword ``c = u @ g % 2``.

    Args:
        g: generator, shape (k, n), 0/1.
        order: column indices to try, shape (≤ n,).

    Returns:
        (cols (k,), inv (k, k) uint8).
    """
    k = g.shape[0]
    basis = np.zeros((0, k), np.uint8)   # reduced columns found so far (as rows) ...
    pivots: list[int] = []               # ... and the pivot row of each
    cols: list[int] = []
    for c in order:
        v = g[:, c].copy()
        for b, p in zip(basis, pivots):
            if v[p]:
                v ^= b
        nz = np.flatnonzero(v)
        if nz.size:
            basis = np.vstack([basis, v])
            pivots.append(int(nz[0]))
            cols.append(int(c))
            if len(cols) == k:
                break
    if len(cols) < k:
        raise ValueError("the generator has rank < k")
    a = g[:, cols]                       # u @ a = c[cols]; invert a by Gauss-Jordan on [aᵀ | I]
    m = np.concatenate([a.T, np.eye(k, dtype=np.uint8)], axis=1)
    for i in range(k):
        r = i + int(np.flatnonzero(m[i:, i])[0])
        m[[i, r]] = m[[r, i]]
        hit = np.flatnonzero(m[:, i])
        hit = hit[hit != i]
        m[hit] ^= m[i]
    return np.array(cols), m[:, k:].T.copy()  # (aᵀ)⁻¹ = (a⁻¹)ᵀ


@njit
def _gf2_product(u: np.ndarray, g: np.ndarray) -> np.ndarray:
    """``u @ g`` over GF(2) for 0/1 uint8 ``u`` (B, k) and ``g`` (k, n): (B, n) uint8, each row the XOR of the rows
    of ``g`` its ones select (reads only those rows: no (k, n) float product)."""
    out = np.zeros((u.shape[0], g.shape[1]), np.uint8)
    for b in range(u.shape[0]):
        for i in range(g.shape[0]):
            if u[b, i]:
                out[b] ^= g[i]
    return out


@njit
def _nearest_codewords(hard: np.ndarray, cols: np.ndarray, inv: np.ndarray, g: np.ndarray
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Bounded-distance decoding of hard decisions ``hard`` (B, n) uint8 0/1 by the information sets ``cols``
    (S, k) with their inverses ``inv`` (S, k, k) uint8 and the generator ``g`` (k, n) uint8: per block, the
    first set whose re-encoded word is within :data:`FAST_PATH_MAX_FLIPS` of the hard decisions gives the
    information bits. Returns (bits (B, k) uint8, zero where not accepted; accepted (B,) bool)."""
    k, n = g.shape
    bits = np.zeros((hard.shape[0], k), np.uint8)
    ok = np.zeros(hard.shape[0], np.bool_)
    selected = np.empty((1, k), np.uint8)
    for b in range(hard.shape[0]):
        for s in range(cols.shape[0]):
            for i in range(k):
                selected[0, i] = hard[b, cols[s, i]]
            u = _gf2_product(selected, inv[s])
            word = _gf2_product(u, g)
            flips = 0
            for j in range(n):
                flips += word[0, j] != hard[b, j]
            if flips <= FAST_PATH_MAX_FLIPS:
                bits[b] = u[0]
                ok[b] = True
                break
    return bits, ok


class PolarHeaderCode:
    """Encoder and decoder of the header code (see the module docstring).

    Example:
        >>> import numpy as np
        >>> code = PolarHeaderCode()
        >>> u = np.random.default_rng(0).integers(0, 2, 80).astype(np.uint8)
        >>> llr = 4.0 * (2.0 * code.encode(u) - 1.0)      # noiseless BPSK, positive = bit 1
        >>> bits, ok = code.decode(llr[None])
        >>> bool(ok[0]) and bool((bits[0] == u).all())
        True
    """

    def __init__(self):
        self.generator = _load_generator()
        sets = [_information_set(self.generator, np.roll(np.arange(N_CODED), -s * N_CODED // _FAST_PATH_SETS))
                for s in range(_FAST_PATH_SETS)]
        self._cols = np.stack([c for c, _ in sets])                       # (S, k)
        self._inv = np.stack([i for _, i in sets])                        # (S, k, k) uint8

    def encode(self, bits: np.ndarray) -> np.ndarray:
        """Information bits (..., 80) 0/1 → coded bits (..., 640) uint8, in transmission order."""
        bits = np.asarray(bits, np.uint8)
        u = np.ascontiguousarray(bits.reshape(-1, K_BITS))
        return _gf2_product(u, self.generator).reshape(bits.shape[:-1] + (N_CODED,))

    def decode(self, llr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """LLRs (B, 640) (positive = bit 1) → information bits (B, 80) uint8 and, per block, whether
        the decoder found a codeword (fast path, or the SCL decoder's CRC-11 passed), shape (B,) bool.
        The caller still checks the header's CRC-16."""
        llr = np.asarray(llr, np.float32)
        if llr.ndim != 2 or llr.shape[1] != N_CODED:
            raise ValueError(f"expected LLRs of shape (B, {N_CODED}), got {llr.shape}")
        bits, ok = self.decode_fast(llr)
        slow = np.flatnonzero(~ok)
        if slow.size:
            bits[slow], ok[slow] = self.decode_list(llr[slow])
        return bits, ok

    def decode_fast(self, llr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Fast path only (compiled, :func:`_nearest_codewords`): (bits (B, 80), accepted (B,)); bits are zero
        where not accepted.

        The information sets are tried in turn, each on the blocks no earlier one accepted: a codeword within
        :data:`FAST_PATH_MAX_FLIPS` of the hard decisions is the only one (far inside half the minimum
        distance), so the first set that finds one finds the nearest, and a clean block costs one set."""
        return _nearest_codewords((llr > 0).astype(np.uint8), self._cols, self._inv, self.generator)

    def decode_list(self, llr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Sionna SCL-8 only: (bits (B, 80), CRC-11 ok (B,))."""
        import torch

        with torch.no_grad():
            bits, ok = self._scl(torch.from_numpy(np.ascontiguousarray(llr, np.float32)))
        return bits.numpy().astype(np.uint8), ok.numpy().astype(bool).reshape(-1)

    @cached_property
    def _scl(self):
        from sionna.phy.fec.polar import Polar5GDecoder, Polar5GEncoder

        return Polar5GDecoder(Polar5GEncoder(K_BITS, N_CODED), dec_type="SCL", list_size=LIST_SIZE,
                              return_crc_status=True)
