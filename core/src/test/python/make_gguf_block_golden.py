#!/usr/bin/env python3
"""Golden vectors for the ggml block quantizers, from an independent numpy implementation.

Implements Q8_0, Q4_0, Q5_0, Q4_1, Q5_1, Q6_K, Q4_K and Q5_K (Q4_1, Q5_1 and each k-quant with and
without importance weights) in
numpy, following llama.cpp's ggml-quants.c reference algorithms (quantize_row_*_ref, make_qx_quants,
make_qkx2_quants, make_qkx3_quants, make_qp_quants) and gguf-py's quants.py, vectorised across blocks instead of looping per block.
All arithmetic is float32 in the C source's order; accumulations that C does sequentially are done
sequentially here too (numpy's pairwise sum would round differently).

Output (little-endian), read by GgufBlockGoldenTest:
  magic b"CPGB", u32 version = 1, u32 case count, then per case:
  u16 name length, name (utf-8), u32 ggml type id, u32 value count, u8 has_importance,
  f32[count] input, [f32[count] importance], u32 byte count, bytes.

Run: /usr/bin/python3 core/src/test/python/make_gguf_block_golden.py core/src/test/resources/gguf/block_golden.bin
"""
import struct
import sys

import numpy as np

F32 = np.float32
QK_K = 256
GROUP_MAX_EPS = F32(1e-15)


def nearest_int(v):
    v = np.asarray(v, dtype=F32)
    val = (v + F32(12582912.0)).astype(F32)
    return (val.view(np.int32) & 0x007FFFFF) - 0x00400000


def fp16_bytes(v):
    return np.asarray(v, dtype=F32).astype(np.float16).view(np.uint8).reshape(-1, 2)


def fp16_f32(v):
    return np.asarray(v, dtype=F32).astype(np.float16).astype(F32)


def roundf(v):
    a = np.floor(np.abs(v.astype(np.float64)) + 0.5)
    return np.where(v < 0, -a, a)


def safe_div(a, b):
    with np.errstate(all="ignore"):
        return np.where(b != 0, (a / np.where(b != 0, b, F32(1))).astype(F32), F32(0)).astype(F32)


# ---------------------------------------------------------------- Q8_0 / Q4_0

def q8_0(x):
    b = x.reshape(-1, 32)
    d = (np.abs(b).max(axis=1) / F32(127)).astype(F32)
    inv = safe_div(np.ones_like(d), d)
    qs = roundf((b * inv[:, None]).astype(F32)).astype(np.int8).view(np.uint8)
    return np.concatenate([fp16_bytes(d), qs], axis=1).ravel()


def q4_0(x):
    b = x.reshape(-1, 32)
    imax = np.abs(b).argmax(axis=1)
    mx = b[np.arange(b.shape[0]), imax]
    d = (mx / F32(-8)).astype(F32)
    inv = safe_div(np.ones_like(d), d)
    v = ((b * inv[:, None]).astype(F32) + F32(8.5)).astype(F32)
    q = np.minimum(15, np.trunc(v).astype(np.int32)).astype(np.uint8)
    qs = q[:, :16] | (q[:, 16:] << 4)
    return np.concatenate([fp16_bytes(d), qs], axis=1).ravel()


def q5_0(x):
    b = x.reshape(-1, 32)
    imax = np.abs(b).argmax(axis=1)
    mx = b[np.arange(b.shape[0]), imax]
    d = (mx / F32(-16)).astype(F32)
    inv = safe_div(np.ones_like(d), d)
    v = ((b * inv[:, None]).astype(F32) + F32(16.5)).astype(F32)
    q = np.minimum(31, np.trunc(v).astype(np.int32)).astype(np.uint32)
    qs = ((q[:, :16] & 0x0F) | ((q[:, 16:] & 0x0F) << 4)).astype(np.uint8)
    qh = (((q >> 4) & 1) << np.arange(32, dtype=np.uint32)).sum(axis=1, dtype=np.uint32)
    qh_bytes = qh.astype("<u4").view(np.uint8).reshape(-1, 4)
    return np.concatenate([fp16_bytes(d), qh_bytes, qs], axis=1).ravel()


# ---------------------------------------------------------------- Q6_K

def make_qx_quants(x, nmax, qw):
    m, n = x.shape
    rows = np.arange(m)
    ax = np.abs(x)
    idx = ax.argmax(axis=1)
    amax = ax[rows, idx]
    zero = amax < GROUP_MAX_EPS
    mx = np.where(zero, F32(1), x[rows, idx]).astype(F32)
    w = qw if qw is not None else (x * x).astype(F32)

    def sums(iscale):
        l = np.clip(nearest_int(iscale[:, None] * x), -nmax, nmax - 1)
        lf = l.astype(F32)
        slx = np.zeros(m, F32)
        sl2 = np.zeros(m, F32)
        for i in range(n):
            slx = (slx + (w[:, i] * x[:, i]) * lf[:, i]).astype(F32)
            sl2 = (sl2 + (w[:, i] * lf[:, i]) * lf[:, i]).astype(F32)
        return l, slx, sl2

    iscale = (F32(-nmax) / mx).astype(F32)
    l, sumlx, suml2 = sums(iscale)
    L = l + nmax
    scale = safe_div(sumlx, suml2)
    best = (scale * sumlx).astype(F32)
    for s in range(-9, 10):
        if s == 0:
            continue
        iscale = (-(F32(nmax) + F32(0.1) * F32(s)) / mx).astype(F32)
        l, sumlx, suml2 = sums(iscale)
        upd = (suml2 > 0) & ((sumlx * sumlx).astype(F32) > (best * suml2).astype(F32))
        L = np.where(upd[:, None], l + nmax, L)
        scale = np.where(upd, safe_div(sumlx, suml2), scale).astype(F32)
        best = np.where(upd, (scale * sumlx).astype(F32), best).astype(F32)
    L[zero] = 0
    scale[zero] = 0
    return scale, L


def q6_k(x, importance=None):
    b = x.reshape(-1, QK_K)
    nb = b.shape[0]
    sub = b.reshape(-1, 16)
    qw = None
    if importance is not None:
        qw = np.tile(importance.reshape(-1, QK_K), (1, 1)).reshape(-1, 16)
    scales, L = make_qx_quants(sub, 32, qw)
    scales = scales.reshape(nb, 16)
    L = L.reshape(nb, QK_K)
    rows = np.arange(nb)
    imax = np.abs(scales).argmax(axis=1)
    max_abs = np.abs(scales)[rows, imax]
    zero = max_abs < GROUP_MAX_EPS
    max_scale = np.where(zero, F32(1), scales[rows, imax]).astype(F32)
    iscale = (F32(-128) / max_scale).astype(F32)
    dh = fp16_bytes((F32(1) / iscale).astype(F32))
    d_all = fp16_f32((F32(1) / iscale).astype(F32))
    sc = np.minimum(127, nearest_int(iscale[:, None] * scales)).astype(np.int8)
    d = (d_all[:, None] * sc.astype(F32)).astype(F32)
    for j in range(16):
        xs = b[:, 16 * j:16 * j + 16]
        dj = d[:, j:j + 1]
        with np.errstate(all="ignore"):
            l = np.clip(nearest_int(xs / np.where(dj != 0, dj, F32(1))), -32, 31) + 32
        L[:, 16 * j:16 * j + 16] = np.where(dj != 0, l, L[:, 16 * j:16 * j + 16])
    L = L.astype(np.uint8)
    ql = np.zeros((nb, 128), np.uint8)
    qh = np.zeros((nb, 64), np.uint8)
    for h in range(2):
        Lh = L[:, 128 * h:128 * h + 128]
        q1, q2, q3, q4 = (Lh[:, 32 * k:32 * k + 32] for k in range(4))
        ql[:, 64 * h:64 * h + 32] = (q1 & 0xF) | ((q3 & 0xF) << 4)
        ql[:, 64 * h + 32:64 * h + 64] = (q2 & 0xF) | ((q4 & 0xF) << 4)
        qh[:, 32 * h:32 * h + 32] = (q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6)
    out = np.concatenate([ql, qh, sc.view(np.uint8), dh], axis=1)
    out[zero] = 0
    return out.ravel()


# ---------------------------------------------------------------- Q4_K (reference path)

def make_qkx2_quants(x, w, nmax, rmin, rdelta, nstep):
    m, n = x.shape
    mn = x.min(axis=1).astype(F32)
    mx = x.max(axis=1).astype(F32)
    sum_w = w[:, 0].copy()
    sum_x = (sum_w * x[:, 0]).astype(F32)
    for i in range(1, n):
        sum_w = (sum_w + w[:, i]).astype(F32)
        sum_x = (sum_x + w[:, i] * x[:, i]).astype(F32)
    mn = np.minimum(mn, F32(0)).astype(F32)
    flat = mx == mn
    rng = np.where(flat, F32(1), mx - mn).astype(F32)
    iscale = (F32(nmax) / rng).astype(F32)
    scale = (F32(1) / iscale).astype(F32)
    L = np.clip(nearest_int(iscale[:, None] * (x - mn[:, None])), 0, nmax)
    best = np.zeros(m, F32)
    for i in range(n):
        diff = ((scale * L[:, i].astype(F32) + mn) - x[:, i]).astype(F32)
        best = (best + w[:, i] * (diff * diff)).astype(F32)
    for s in range(nstep + 1):
        rng = np.where(flat, F32(1), mx - mn).astype(F32)
        iscale = ((F32(rmin) + F32(rdelta) * F32(s) + F32(nmax)) / rng).astype(F32)
        laux = np.clip(nearest_int(iscale[:, None] * (x - mn[:, None])), 0, nmax)
        lf = laux.astype(F32)
        sl = np.zeros(m, F32)
        sl2 = np.zeros(m, F32)
        sxl = np.zeros(m, F32)
        for i in range(n):
            sl = (sl + w[:, i] * lf[:, i]).astype(F32)
            sl2 = (sl2 + (w[:, i] * lf[:, i]) * lf[:, i]).astype(F32)
            sxl = (sxl + (w[:, i] * lf[:, i]) * x[:, i]).astype(F32)
        D = (sum_w * sl2 - sl * sl).astype(F32)
        ok = D > 0
        this_scale = safe_div((sum_w * sxl - sum_x * sl).astype(F32), D)
        this_min = safe_div((sl2 * sum_x - sl * sxl).astype(F32), D)
        pos = this_min > 0
        this_min = np.where(pos, F32(0), this_min).astype(F32)
        this_scale = np.where(pos, safe_div(sxl, sl2), this_scale).astype(F32)
        cur = np.zeros(m, F32)
        for i in range(n):
            diff = ((this_scale * lf[:, i] + this_min) - x[:, i]).astype(F32)
            cur = (cur + w[:, i] * (diff * diff)).astype(F32)
        upd = ok & (cur < best) & ~flat
        L = np.where(upd[:, None], laux, L)
        best = np.where(upd, cur, best).astype(F32)
        scale = np.where(upd, this_scale, scale).astype(F32)
        mn = np.where(upd, this_min, mn).astype(F32)
    L[flat] = 0
    scale = np.where(flat, F32(0), scale).astype(F32)
    return scale, (-mn).astype(F32), L


def q4_k(x):
    b = x.reshape(-1, QK_K)
    nb = b.shape[0]
    sub = b.reshape(-1, 32)
    sx2 = np.zeros(sub.shape[0], F32)
    for l in range(32):
        sx2 = (sx2 + sub[:, l] * sub[:, l]).astype(F32)
    av = np.sqrt((sx2 / F32(32)).astype(F32)).astype(F32)
    w = (av[:, None] + np.abs(sub)).astype(F32)
    scales, mins, L = make_qkx2_quants(sub, w, 15, -1.0, 0.1, 20)
    scales = scales.reshape(nb, 8)
    mins = mins.reshape(nb, 8)
    L = L.reshape(nb, QK_K)
    max_scale = np.maximum(scales.max(axis=1), F32(0)).astype(F32)
    max_min = np.maximum(mins.max(axis=1), F32(0)).astype(F32)
    inv_s = np.where(max_scale > 0, safe_div(np.full(nb, 63, F32), max_scale), F32(0)).astype(F32)
    inv_m = np.where(max_min > 0, safe_div(np.full(nb, 63, F32), max_min), F32(0)).astype(F32)
    ls = np.minimum(63, nearest_int(inv_s[:, None] * scales) & 0xFF)
    lm = np.minimum(63, nearest_int(inv_m[:, None] * mins) & 0xFF)
    sc = np.zeros((nb, 12), np.int32)
    for j in range(8):
        if j < 4:
            sc[:, j] = ls[:, j]
            sc[:, j + 4] = lm[:, j]
        else:
            sc[:, j + 4] = (ls[:, j] & 0xF) | ((lm[:, j] & 0xF) << 4)
            sc[:, j - 4] |= (ls[:, j] >> 4) << 6
            sc[:, j] |= (lm[:, j] >> 4) << 6
    d = (max_scale / F32(63)).astype(F32)
    dmin = (max_min / F32(63)).astype(F32)
    d16 = fp16_f32(d)
    dmin16 = fp16_f32(dmin)
    for j in range(8):
        if j < 4:
            s, m = sc[:, j] & 63, sc[:, j + 4] & 63
        else:
            s = (sc[:, j + 4] & 0xF) | ((sc[:, j - 4] >> 6) << 4)
            m = (sc[:, j + 4] >> 4) | ((sc[:, j] >> 6) << 4)
        dd = (d16 * s.astype(F32)).astype(F32)[:, None]
        dm = (dmin16 * m.astype(F32)).astype(F32)[:, None]
        xs = b[:, 32 * j:32 * j + 32]
        with np.errstate(all="ignore"):
            l = np.clip(nearest_int(((xs + dm).astype(F32) / np.where(dd != 0, dd, F32(1))).astype(F32)), 0, 15)
        L[:, 32 * j:32 * j + 32] = np.where(dd != 0, l, L[:, 32 * j:32 * j + 32])
    L = L.astype(np.uint8)
    qs = np.zeros((nb, 128), np.uint8)
    for c in range(4):
        qs[:, 32 * c:32 * c + 32] = L[:, 64 * c:64 * c + 32] | (L[:, 64 * c + 32:64 * c + 64] << 4)
    return np.concatenate([fp16_bytes(d), fp16_bytes(dmin), sc.astype(np.uint8), qs], axis=1).ravel()


# ---------------------------------------------------------------- Q4_K (importance path)

def make_qkx3_quants(x, w, nmax, rmin, rdelta, nstep):
    m, n = x.shape
    mn = x.min(axis=1).astype(F32)
    mx = x.max(axis=1).astype(F32)
    sum_w = w[:, 0].copy()
    sum_x = (sum_w * x[:, 0]).astype(F32)
    for i in range(1, n):
        sum_w = (sum_w + w[:, i]).astype(F32)
        sum_x = (sum_x + w[:, i] * x[:, i]).astype(F32)
    mn = np.minimum(mn, F32(0)).astype(F32)
    flat = mx <= mn
    rng = np.where(flat, F32(1), mx - mn).astype(F32)
    iscale = (F32(nmax) / rng).astype(F32)
    scale = (F32(1) / iscale).astype(F32)
    L = np.clip(nearest_int(iscale[:, None] * (x - mn[:, None])), 0, nmax)
    best = np.zeros(m, F32)
    for i in range(n):
        diff = ((scale * L[:, i].astype(F32) + mn) - x[:, i]).astype(F32)
        best = (best + w[:, i] * (diff * diff)).astype(F32)
    for s in range(nstep + 1):
        rng = np.where(flat, F32(1), mx - mn).astype(F32)
        iscale = ((F32(rmin) + F32(rdelta) * F32(s) + F32(nmax)) / rng).astype(F32)
        with np.errstate(all="ignore"):
            v = (iscale[:, None] * (x - mn[:, None]).astype(F32)).astype(F32)
            vv = np.where(v > 0, np.minimum(v, F32(nmax)), F32(0)).astype(F32)
            laux = np.where(v > 0, nearest_int(vv), 0)
        lf = laux.astype(F32)
        sl = np.zeros(m, F32)
        sl2 = np.zeros(m, F32)
        sxl = np.zeros(m, F32)
        for i in range(n):
            sl = (sl + w[:, i] * lf[:, i]).astype(F32)
            sl2 = (sl2 + (w[:, i] * lf[:, i]) * lf[:, i]).astype(F32)
            sxl = (sxl + (w[:, i] * lf[:, i]) * x[:, i]).astype(F32)
        D = (sum_w * sl2 - sl * sl).astype(F32)
        ok = D > 0
        this_scale = safe_div((sum_w * sxl - sum_x * sl).astype(F32), D)
        this_min = safe_div((sl2 * sum_x - sl * sxl).astype(F32), D)
        pos = this_min > 0
        this_min = np.where(pos, F32(0), this_min).astype(F32)
        this_scale = np.where(pos, safe_div(sxl, sl2), this_scale).astype(F32)
        cur = np.zeros(m, F32)
        for i in range(n):
            diff = ((this_scale * lf[:, i] + this_min) - x[:, i]).astype(F32)
            cur = (cur + w[:, i] * (diff * diff)).astype(F32)
        upd = ok & (cur < best) & ~flat
        L = np.where(upd[:, None], laux, L)
        best = np.where(upd, cur, best).astype(F32)
        scale = np.where(upd, this_scale, scale).astype(F32)
        mn = np.where(upd, this_min, mn).astype(F32)
    L[flat] = 0
    scale = np.where(flat, F32(0), scale).astype(F32)
    return scale, (-mn).astype(F32), L


def make_qp_quants(x, nmax, qw):
    m, n = x.shape
    mx = np.maximum(x.max(axis=1), F32(0)).astype(F32)
    zero = mx < GROUP_MAX_EPS
    safe = np.where(zero, F32(1), mx).astype(F32)
    iscale = (F32(nmax) / safe).astype(F32)
    L = nearest_int(iscale[:, None] * x) & 0xFF
    scale = (F32(1) / iscale).astype(F32)
    best = np.zeros(m, F32)
    for i in range(n):
        diff = (x[:, i] - scale * L[:, i].astype(F32)).astype(F32)
        best = (best + (qw[:, i] * diff) * diff).astype(F32)
    for s in range(-4, 5):
        if s == 0:
            continue
        iscale_is = ((F32(0.1) * F32(s) + F32(nmax)) / safe).astype(F32)
        scale_is = (F32(1) / iscale_is).astype(F32)
        l = np.minimum(nmax, nearest_int(iscale_is[:, None] * x)).astype(F32)
        mse = np.zeros(m, F32)
        for i in range(n):
            diff = (x[:, i] - scale_is * l[:, i]).astype(F32)
            mse = (mse + (qw[:, i] * diff) * diff).astype(F32)
        upd = mse < best
        best = np.where(upd, mse, best).astype(F32)
        iscale = np.where(upd, iscale_is, iscale).astype(F32)
    l = np.minimum(nmax, nearest_int(iscale[:, None] * x))
    L = l & 0xFF
    lf = l.astype(F32)
    sumlx = np.zeros(m, F32)
    suml2 = np.zeros(m, F32)
    for i in range(n):
        sumlx = (sumlx + (qw[:, i] * x[:, i]) * lf[:, i]).astype(F32)
        suml2 = (suml2 + (qw[:, i] * lf[:, i]) * lf[:, i]).astype(F32)
    for _ in range(5):
        for i in range(n):
            w = qw[:, i]
            li = L[:, i].astype(F32)
            slx = (sumlx - (w * x[:, i]) * li).astype(F32)
            sl2 = (suml2 - (w * li) * li).astype(F32)
            cond = (slx > 0) & (sl2 > 0)
            with np.errstate(all="ignore"):
                q = ((x[:, i] * sl2).astype(F32) / np.where(cond, slx, F32(1))).astype(F32)
                new_l = np.minimum(nmax, nearest_int(np.where(cond, q, F32(0))))
            nf = new_l.astype(F32)
            cond = cond & (new_l != L[:, i])
            slx2 = (slx + (w * x[:, i]) * nf).astype(F32)
            sl22 = (sl2 + (w * nf) * nf).astype(F32)
            cond = cond & (((slx2 * slx2) * suml2).astype(F32) > ((sumlx * sumlx) * sl22).astype(F32))
            L[:, i] = np.where(cond, new_l & 0xFF, L[:, i])
            sumlx = np.where(cond, slx2, sumlx).astype(F32)
            suml2 = np.where(cond, sl22, suml2).astype(F32)
    out = np.where(suml2 > 0, safe_div(sumlx, suml2), F32(0)).astype(F32)
    L[zero] = 0
    out[zero] = 0
    return out, L


def q4_k_imatrix(x, importance):
    b = x.reshape(-1, QK_K)
    nb = b.shape[0]
    qw = importance.reshape(-1, QK_K)
    sx2 = np.zeros(nb, F32)
    for l in range(QK_K):
        sx2 = (sx2 + b[:, l] * b[:, l]).astype(F32)
    sigma2 = ((F32(2) * sx2) / F32(QK_K)).astype(F32)
    sub = b.reshape(-1, 32)
    w = (qw.reshape(-1, 32) * np.sqrt((np.repeat(sigma2, 8)[:, None] + sub * sub).astype(F32))).astype(F32)
    sw = np.zeros(sub.shape[0], F32)
    for l in range(32):
        sw = (sw + w[:, l]).astype(F32)
    scales, mins, L = make_qkx3_quants(sub, w, 15, -0.9, 0.05, 36)
    d_block, ls = make_qp_quants(scales.reshape(nb, 8), 63, sw.reshape(nb, 8))
    m_block, lm = make_qp_quants(mins.reshape(nb, 8), 63, sw.reshape(nb, 8))
    return pack_q4_k(b, L.reshape(nb, QK_K), ls, lm, d_block, m_block)


def pack_q4_k(b, L, ls, lm, d, dmin):
    nb = b.shape[0]
    sc = np.zeros((nb, 12), np.int32)
    for j in range(8):
        if j < 4:
            sc[:, j] = ls[:, j]
            sc[:, j + 4] = lm[:, j]
        else:
            sc[:, j + 4] = (ls[:, j] & 0xF) | ((lm[:, j] & 0xF) << 4)
            sc[:, j - 4] |= (ls[:, j] >> 4) << 6
            sc[:, j] |= (lm[:, j] >> 4) << 6
    sc &= 0xFF
    d16 = fp16_f32(d)
    dmin16 = fp16_f32(dmin)
    for j in range(8):
        if j < 4:
            s, m = sc[:, j] & 63, sc[:, j + 4] & 63
        else:
            s = (sc[:, j + 4] & 0xF) | ((sc[:, j - 4] >> 6) << 4)
            m = (sc[:, j + 4] >> 4) | ((sc[:, j] >> 6) << 4)
        dd = (d16 * s.astype(F32)).astype(F32)[:, None]
        dm = (dmin16 * m.astype(F32)).astype(F32)[:, None]
        xs = b[:, 32 * j:32 * j + 32]
        with np.errstate(all="ignore"):
            l = np.clip(nearest_int(((xs + dm).astype(F32) / np.where(dd != 0, dd, F32(1))).astype(F32)), 0, 15)
        L[:, 32 * j:32 * j + 32] = np.where(dd != 0, l, L[:, 32 * j:32 * j + 32])
    L = L.astype(np.uint8)
    qs = np.zeros((nb, 128), np.uint8)
    for c in range(4):
        qs[:, 32 * c:32 * c + 32] = L[:, 64 * c:64 * c + 32] | (L[:, 64 * c + 32:64 * c + 64] << 4)
    return np.concatenate([fp16_bytes(d), fp16_bytes(dmin), sc.astype(np.uint8), qs], axis=1).ravel()


# ---------------------------------------------------------------- Q4_1 / Q5_1 (legacy asymmetric)

def legacy_asym_ref(x, bits):
    b = x.reshape(-1, 32)
    mn = b.min(axis=1).astype(F32)
    mx = b.max(axis=1).astype(F32)
    d = ((mx - mn).astype(F32) / F32((1 << bits) - 1)).astype(F32)
    inv = safe_div(np.ones_like(d), d)
    v = (((b - mn[:, None]).astype(F32) * inv[:, None]).astype(F32) + F32(0.5)).astype(F32)
    q = np.trunc(v).astype(np.int32)
    if bits == 4:
        q = np.minimum(15, q)
    return d, mn, q.astype(np.uint32)


def legacy_asym_imatrix(x, importance, bits):
    # quantize_row_q{4,5}_1_impl: sigma2 over the whole row (here: the whole input is one row)
    n = x.size
    sx2 = F32(0)
    for j in range(n):
        sx2 = F32(sx2 + F32(x[j] * x[j]))
    sigma2 = F32(sx2 / F32(n))
    b = x.reshape(-1, 32)
    w = (importance.reshape(-1, 32) * np.sqrt((sigma2 + b * b).astype(F32))).astype(F32)
    scale, neg_min, L = make_qkx3_quants(b, w, (1 << bits) - 1, -0.9, 0.05, 36)
    return scale, (-neg_min).astype(F32), L.astype(np.uint32)


def pack_q4_1(d, m, q):
    qs = (q[:, :16] | (q[:, 16:] << 4)).astype(np.uint8)
    return np.concatenate([fp16_bytes(d), fp16_bytes(m), qs], axis=1).ravel()


def pack_q5_1(d, m, q):
    qs = ((q[:, :16] & 0x0F) | ((q[:, 16:] & 0x0F) << 4)).astype(np.uint8)
    qh = (((q >> 4) & 1) << np.arange(32, dtype=np.uint32)).sum(axis=1, dtype=np.uint32)
    qh_bytes = qh.astype("<u4").view(np.uint8).reshape(-1, 4)
    return np.concatenate([fp16_bytes(d), fp16_bytes(m), qh_bytes, qs], axis=1).ravel()


# ---------------------------------------------------------------- Q5_K

def pack_q5_k(b, L, ls, lm, d, dmin):
    nb = b.shape[0]
    sc = np.zeros((nb, 12), np.int32)
    for j in range(8):
        if j < 4:
            sc[:, j] = ls[:, j]
            sc[:, j + 4] = lm[:, j]
        else:
            sc[:, j + 4] = (ls[:, j] & 0xF) | ((lm[:, j] & 0xF) << 4)
            sc[:, j - 4] |= (ls[:, j] >> 4) << 6
            sc[:, j] |= (lm[:, j] >> 4) << 6
    sc &= 0xFF
    d16 = fp16_f32(d)
    dmin16 = fp16_f32(dmin)
    for j in range(8):
        if j < 4:
            s, m = sc[:, j] & 63, sc[:, j + 4] & 63
        else:
            s = (sc[:, j + 4] & 0xF) | ((sc[:, j - 4] >> 6) << 4)
            m = (sc[:, j + 4] >> 4) | ((sc[:, j] >> 6) << 4)
        dd = (d16 * s.astype(F32)).astype(F32)[:, None]
        dm = (dmin16 * m.astype(F32)).astype(F32)[:, None]
        xs = b[:, 32 * j:32 * j + 32]
        with np.errstate(all="ignore"):
            l = np.clip(nearest_int(((xs + dm).astype(F32) / np.where(dd != 0, dd, F32(1))).astype(F32)), 0, 31)
        L[:, 32 * j:32 * j + 32] = np.where(dd != 0, l, L[:, 32 * j:32 * j + 32])
    L = L.astype(np.uint8)
    qh = np.zeros((nb, 32), np.uint8)
    ql = np.zeros((nb, 128), np.uint8)
    for c in range(4):
        lo = L[:, 64 * c:64 * c + 32]
        hi = L[:, 64 * c + 32:64 * c + 64]
        qh |= (((lo >> 4) & 1) << (2 * c)).astype(np.uint8)
        qh |= (((hi >> 4) & 1) << (2 * c + 1)).astype(np.uint8)
        ql[:, 32 * c:32 * c + 32] = (lo & 0xF) | ((hi & 0xF) << 4)
    return np.concatenate([fp16_bytes(d), fp16_bytes(dmin), sc.astype(np.uint8), qh, ql], axis=1).ravel()


def q5_k(x):
    b = x.reshape(-1, QK_K)
    nb = b.shape[0]
    sub = b.reshape(-1, 32)
    sx2 = np.zeros(sub.shape[0], F32)
    for l in range(32):
        sx2 = (sx2 + sub[:, l] * sub[:, l]).astype(F32)
    av = np.sqrt((sx2 / F32(32)).astype(F32)).astype(F32)
    w = (av[:, None] + np.abs(sub)).astype(F32)
    scales, mins, L = make_qkx2_quants(sub, w, 31, -0.5, 0.1, 15)
    scales = scales.reshape(nb, 8)
    mins = mins.reshape(nb, 8)
    max_scale = np.maximum(scales.max(axis=1), F32(0)).astype(F32)
    max_min = np.maximum(mins.max(axis=1), F32(0)).astype(F32)
    inv_s = np.where(max_scale > 0, safe_div(np.full(nb, 63, F32), max_scale), F32(0)).astype(F32)
    inv_m = np.where(max_min > 0, safe_div(np.full(nb, 63, F32), max_min), F32(0)).astype(F32)
    ls = np.minimum(63, nearest_int(inv_s[:, None] * scales) & 0xFF)
    lm = np.minimum(63, nearest_int(inv_m[:, None] * mins) & 0xFF)
    d = (max_scale / F32(63)).astype(F32)
    dmin = (max_min / F32(63)).astype(F32)
    return pack_q5_k(b, L.reshape(nb, QK_K), ls, lm, d, dmin)


def q5_k_imatrix(x, importance):
    b = x.reshape(-1, QK_K)
    nb = b.shape[0]
    qw = importance.reshape(-1, QK_K)
    sx2 = np.zeros(nb, F32)
    for l in range(QK_K):
        sx2 = (sx2 + b[:, l] * b[:, l]).astype(F32)
    sigma2 = ((F32(2) * sx2) / F32(QK_K)).astype(F32)
    sub = b.reshape(-1, 32)
    w = (qw.reshape(-1, 32) * np.sqrt((np.repeat(sigma2, 8)[:, None] + sub * sub).astype(F32))).astype(F32)
    sw = np.zeros(sub.shape[0], F32)
    for l in range(32):
        sw = (sw + w[:, l]).astype(F32)
    scales, mins, L = make_qkx3_quants(sub, w, 31, -0.9, 0.05, 36)
    d_block, ls = make_qp_quants(scales.reshape(nb, 8), 63, sw.reshape(nb, 8))
    m_block, lm = make_qp_quants(mins.reshape(nb, 8), 63, sw.reshape(nb, 8))
    return pack_q5_k(b, L.reshape(nb, QK_K), np.minimum(63, ls), np.minimum(63, lm), d_block, m_block)


# ---------------------------------------------------------------- inputs and file

def inputs(rng, n, block):
    x = rng.standard_normal(n).astype(F32)
    scale = np.exp(rng.uniform(-6, 2, n // block)).astype(F32)
    x = (x.reshape(-1, block) * scale[:, None]).astype(F32).ravel()
    x[:block] = 0  # an all-zero block
    x[block:2 * block] = (np.arange(block, dtype=F32) - block / 2) * F32(0.25)  # exact halves
    x[2 * block:3 * block] = np.abs(x[2 * block:3 * block])  # all positive
    x[3 * block:4 * block] = -np.abs(x[3 * block:4 * block]) * F32(1e-3)  # small negatives
    x[4 * block + 5] = F32(1e4)  # one outlier
    return x


def main(path):
    rng = np.random.default_rng(20240601)
    cases = []
    x = inputs(rng, 4096, 32)
    cases.append(("q8_0", 8, x, None, q8_0(x)))
    x = inputs(rng, 4096, 32)
    cases.append(("q4_0", 2, x, None, q4_0(x)))
    x = inputs(rng, 8 * QK_K, QK_K)
    cases.append(("q6_k", 14, x, None, q6_k(x)))
    x = inputs(rng, 5 * QK_K, QK_K)
    imp = rng.uniform(0.01, 4.0, x.size).astype(F32)
    cases.append(("q6_k_imatrix", 14, x, imp, q6_k(x, imp)))
    x = inputs(rng, 8 * QK_K, QK_K)
    cases.append(("q4_k", 12, x, None, q4_k(x)))
    x = inputs(rng, 5 * QK_K, QK_K)
    imp = rng.uniform(0.01, 4.0, x.size).astype(F32)
    cases.append(("q4_k_imatrix", 12, x, imp, q4_k_imatrix(x, imp)))
    x = inputs(rng, 4096, 32)
    cases.append(("q5_0", 6, x, None, q5_0(x)))
    # version-1 cases above are unchanged; the Q4_1 / Q5_1 / Q5_K cases follow
    x = inputs(rng, 4096, 32)
    cases.append(("q4_1", 3, x, None, pack_q4_1(*legacy_asym_ref(x, 4))))
    x = inputs(rng, 4096, 32)
    cases.append(("q5_1", 7, x, None, pack_q5_1(*legacy_asym_ref(x, 5))))
    x = inputs(rng, 1024, 32)
    imp = rng.uniform(0.01, 4.0, x.size).astype(F32)
    cases.append(("q4_1_imatrix", 3, x, imp, pack_q4_1(*legacy_asym_imatrix(x, imp, 4))))
    x = inputs(rng, 1024, 32)
    imp = rng.uniform(0.01, 4.0, x.size).astype(F32)
    cases.append(("q5_1_imatrix", 7, x, imp, pack_q5_1(*legacy_asym_imatrix(x, imp, 5))))
    x = inputs(rng, 8 * QK_K, QK_K)
    cases.append(("q5_k", 13, x, None, q5_k(x)))
    x = inputs(rng, 5 * QK_K, QK_K)
    imp = rng.uniform(0.01, 4.0, x.size).astype(F32)
    cases.append(("q5_k_imatrix", 13, x, imp, q5_k_imatrix(x, imp)))
    with open(path, "wb") as f:
        f.write(b"CPGB")
        f.write(struct.pack("<II", 1, len(cases)))
        for name, tid, xs, imp, out in cases:
            nb = name.encode()
            f.write(struct.pack("<H", len(nb)))
            f.write(nb)
            f.write(struct.pack("<IIB", tid, xs.size, 0 if imp is None else 1))
            f.write(xs.astype("<f4").tobytes())
            if imp is not None:
                f.write(imp.astype("<f4").tobytes())
            f.write(struct.pack("<I", out.size))
            f.write(out.astype(np.uint8).tobytes())
    print("wrote", path, [(c[0], c[4].size) for c in cases])


if __name__ == "__main__":
    main(sys.argv[1])
