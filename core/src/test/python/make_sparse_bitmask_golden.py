#!/usr/bin/python3
"""Golden layout of compressed-tensors' sparse bitmask compressors, written with numpy alone.

The rules, as read in neuralmagic/compressed-tensors (compressors/sparse_compressors/):
  sparse-24-bitmask (Sparse24BitMaskCompressor / sparse24_bitmask_compress):
    <P>.shape      I64 [2, 1]  torch.tensor(shape).reshape(-1, 1)
    <P>.compressed dtype of W [rows, cols/2]  W[mask] with mask = the 2 largest |w| of every
                   group of 4 consecutive elements (topk(2) on view(-1, 4)), reshaped per row
    <P>.bitmask    U8 [rows, ceil(cols/8)]  numpy.packbits(mask, axis=-1, bitorder="little")
  sparse-bitmask (BitmaskCompressor / bitmask_compress):
    <P>.shape       I64 [2]
    <P>.compressed  dtype of W [nnz]  W[W != 0], row-major
    <P>.bitmask     U8 [rows, ceil(cols/8)]  packbits(W != 0, axis=-1, bitorder="little")
    <P>.row_offsets I64 [rows]  cumsum(row_counts) - row_counts
topk leaves open which zero a group with more than 2 zeros keeps; Compactor keeps the
lowest-index zeros, and so does this script (a stable sort on -|w|), so the bytes compare equal.
Decoding (unpackbits + scatter) is checked here too: it must give W back.

Input: W24 (BF16 [8, 24], 2:4 with a few all-zero and three-zero groups, a -0.0), WU (F32 [5, 13],
unstructured, cols not a multiple of 8). Output: one safetensors file with W24, WU and the parts
"W24.shape", "W24.compressed", "W24.bitmask", "WU.shape", "WU.compressed", "WU.bitmask",
"WU.row_offsets"; __metadata__ magic "compactor-sparse-bitmask-golden", version "1".

Run:  /usr/bin/python3 core/src/test/python/make_sparse_bitmask_golden.py \
          core/src/test/resources/golden/sparse/sparse_bitmask_golden.safetensors
"""
import json
import struct
import sys

import numpy as np


def bf16_bits(a):
    """float32 -> bfloat16 bit patterns (round to nearest even), as uint16."""
    u = a.astype("<f4").view("<u4").astype(np.uint64)
    rounded = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    return rounded.astype("<u2")


def mask_24(absval):
    rows, cols = absval.shape
    groups = absval.reshape(-1, 4)
    order = np.argsort(-groups, axis=1, kind="stable")[:, :2]
    mask = np.zeros_like(groups, dtype=bool)
    np.put_along_axis(mask, order, True, axis=1)
    return mask.reshape(rows, cols)


def compress_24(bits_or_values, absval):
    rows, cols = absval.shape
    mask = mask_24(absval)
    values = bits_or_values[mask].reshape(rows, cols // 2)
    bitmask = np.packbits(mask, axis=-1, bitorder="little")
    shape = np.array([rows, cols], dtype="<i8").reshape(-1, 1)
    return shape, values, bitmask, mask


def compress_unstructured(values, nonzero):
    rows, cols = values.shape
    counts = nonzero.sum(axis=-1).astype("<i8")
    offsets = (np.cumsum(counts) - counts).astype("<i8")
    return (np.array([rows, cols], dtype="<i8"), values[nonzero],
            np.packbits(nonzero, axis=-1, bitorder="little"), offsets)


def decompress(values, bitmask, shape):
    mask = np.unpackbits(bitmask, axis=-1, count=shape[-1], bitorder="little").astype(bool)
    out = np.zeros(shape, dtype=values.dtype)
    out[mask] = values.reshape(-1)
    return out


def write_safetensors(path, tensors, metadata):
    header = {"__metadata__": metadata}
    offset = 0
    blobs = []
    for name, (dtype, arr) in tensors.items():
        raw = np.ascontiguousarray(arr).tobytes()
        header[name] = {"dtype": dtype, "shape": list(arr.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
        blobs.append(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def main():
    rng = np.random.default_rng(20240224)
    # 2:4 weight in bf16: keep 2 random positions of each group of 4
    w = rng.standard_normal((8, 24)).astype(np.float32) * 0.1
    for g in range(w.size // 4):
        drop = rng.choice(4, size=2, replace=False)
        w.reshape(-1, 4)[g, drop] = 0
    w[0, 0:4] = 0           # a group of zeros only
    w[1, 4:8] = [0, 0, 0, 0.25]  # three zeros
    w[2, 8:12] = [-0.0, 0.5, 0, 0]  # a negative zero (counts as zero)
    bits = bf16_bits(w)
    absval = np.abs(bits.view("<u2") & 0x7FFF).astype(np.int64)  # |w| order = bit order
    shape24, comp24, mask24bits, mask24 = compress_24(bits, absval)
    assert (decompress(comp24, mask24bits, (8, 24)) == np.where(mask24, bits, 0)).all()
    assert ((bits & 0x7FFF)[~mask24] == 0).all(), "dropped a nonzero"

    wu = rng.standard_normal((5, 13)).astype("<f4")
    wu[rng.random((5, 13)) < 0.6] = 0
    wu[3, :] = 0  # an empty row
    nz = wu != 0
    shapeu, compu, masku, offu = compress_unstructured(wu, nz)
    assert (decompress(compu, masku, (5, 13)) == wu).all()

    tensors = {
        "W24": ("BF16", bits.reshape(8, 24)),
        "WU": ("F32", wu),
        "W24.shape": ("I64", shape24),
        "W24.compressed": ("BF16", comp24),
        "W24.bitmask": ("U8", mask24bits),
        "WU.shape": ("I64", shapeu),
        "WU.compressed": ("F32", compu),
        "WU.bitmask": ("U8", masku),
        "WU.row_offsets": ("I64", offu),
    }
    write_safetensors(sys.argv[1], tensors,
                      {"magic": "compactor-sparse-bitmask-golden", "version": "1"})
    print("W24: kept", int(mask24.sum()), "of", mask24.size, "; WU: nnz", int(nz.sum()))


if __name__ == "__main__":
    main()
