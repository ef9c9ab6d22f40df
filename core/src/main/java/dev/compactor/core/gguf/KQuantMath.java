package dev.compactor.core.gguf;

/**
 * The scale searches behind ggml's k-quants, ported one to one from ggml-quants.c ({@code
 * nearest_int}, {@code make_qx_quants}, {@code make_qkx2_quants}, {@code make_qkx3_quants}, {@code
 * make_qp_quants}). Every arithmetic step is a single fp32 operation in the same order as the C
 * source, so the results are bit-for-bit those of a C build without FMA contraction. Arrays with an
 * offset stand in for C's pointer arithmetic; {@code L} arrays hold C's uint8/int8 codes.
 */
final class KQuantMath {

  static final float GROUP_MAX_EPS = 1e-15f;

  private KQuantMath() {}

  /** Round to nearest, ties to even, via the 1.5 * 2^23 trick (valid for |v| <= 4194303). */
  static int nearestInt(float fval) {
    float val = fval + 12582912.f;
    int i = Float.floatToRawIntBits(val);
    return (i & 0x007fffff) - 0x00400000;
  }

  static float sqrtf(float v) {
    return (float) Math.sqrt(v);
  }

  /**
   * {@code make_qx_quants} with {@code rmse_type} 1: symmetric codes in {@code [0, 2*nmax)} stored
   * in {@code L[lo..lo+n)} (offset by nmax), returns the scale. {@code qw} may be null.
   */
  static float makeQxQuants(
      int n, int nmax, float[] x, int xo, byte[] L, int lo, float[] qw, int qwo) {
    float max = 0;
    float amax = 0;
    for (int i = 0; i < n; ++i) {
      float ax = Math.abs(x[xo + i]);
      if (ax > amax) {
        amax = ax;
        max = x[xo + i];
      }
    }
    if (amax < GROUP_MAX_EPS) {
      for (int i = 0; i < n; ++i) {
        L[lo + i] = 0;
      }
      return 0.f;
    }
    float iscale = -nmax / max;
    float sumlx = 0;
    float suml2 = 0;
    for (int i = 0; i < n; ++i) {
      int l = nearestInt(iscale * x[xo + i]);
      l = Math.max(-nmax, Math.min(nmax - 1, l));
      L[lo + i] = (byte) (l + nmax);
      float w = qw != null ? qw[qwo + i] : x[xo + i] * x[xo + i];
      sumlx += w * x[xo + i] * l;
      suml2 += w * l * l;
    }
    float scale = suml2 != 0 ? sumlx / suml2 : 0.0f;
    float best = scale * sumlx;
    for (int is = -9; is <= 9; ++is) {
      if (is == 0) {
        continue;
      }
      iscale = -(nmax + 0.1f * is) / max;
      sumlx = 0;
      suml2 = 0;
      for (int i = 0; i < n; ++i) {
        int l = nearestInt(iscale * x[xo + i]);
        l = Math.max(-nmax, Math.min(nmax - 1, l));
        float w = qw != null ? qw[qwo + i] : x[xo + i] * x[xo + i];
        sumlx += w * x[xo + i] * l;
        suml2 += w * l * l;
      }
      if (suml2 > 0 && sumlx * sumlx > best * suml2) {
        for (int i = 0; i < n; ++i) {
          int l = nearestInt(iscale * x[xo + i]);
          L[lo + i] = (byte) (nmax + Math.max(-nmax, Math.min(nmax - 1, l)));
        }
        scale = sumlx / suml2;
        best = scale * sumlx;
      }
    }
    return scale;
  }

  /**
   * {@code make_qkx2_quants}: asymmetric codes {@code [0, nmax]} with a scale and a min found by a
   * grid search over {@code nstep + 1} inverse scales; writes {@code -min} to {@code theMin[mo]}.
   */
  static float makeQkx2Quants(
      int n,
      int nmax,
      float[] x,
      int xo,
      float[] weights,
      byte[] L,
      int lo,
      float[] theMin,
      int mo,
      byte[] laux,
      float rmin,
      float rdelta,
      int nstep,
      boolean useMad) {
    float min = x[xo];
    float max = x[xo];
    float sumW = weights[0];
    float sumX = sumW * x[xo];
    for (int i = 1; i < n; ++i) {
      if (x[xo + i] < min) {
        min = x[xo + i];
      }
      if (x[xo + i] > max) {
        max = x[xo + i];
      }
      float w = weights[i];
      sumW += w;
      sumX += w * x[xo + i];
    }
    if (min > 0) {
      min = 0;
    }
    if (max == min) {
      for (int i = 0; i < n; ++i) {
        L[lo + i] = 0;
      }
      theMin[mo] = -min;
      return 0.f;
    }
    float iscale = nmax / (max - min);
    float scale = 1 / iscale;
    float bestError = 0;
    for (int i = 0; i < n; ++i) {
      int l = nearestInt(iscale * (x[xo + i] - min));
      L[lo + i] = (byte) Math.max(0, Math.min(nmax, l));
      float diff = scale * (L[lo + i] & 0xff) + min - x[xo + i];
      diff = useMad ? Math.abs(diff) : diff * diff;
      bestError += weights[i] * diff;
    }
    if (nstep < 1) {
      theMin[mo] = -min;
      return scale;
    }
    for (int is = 0; is <= nstep; ++is) {
      iscale = (rmin + rdelta * is + nmax) / (max - min);
      float sumL = 0;
      float sumL2 = 0;
      float sumXl = 0;
      for (int i = 0; i < n; ++i) {
        int l = nearestInt(iscale * (x[xo + i] - min));
        l = Math.max(0, Math.min(nmax, l));
        laux[i] = (byte) l;
        float w = weights[i];
        sumL += w * l;
        sumL2 += w * l * l;
        sumXl += w * l * x[xo + i];
      }
      float det = sumW * sumL2 - sumL * sumL;
      if (det > 0) {
        float thisScale = (sumW * sumXl - sumX * sumL) / det;
        float thisMin = (sumL2 * sumX - sumL * sumXl) / det;
        if (thisMin > 0) {
          thisMin = 0;
          thisScale = sumXl / sumL2;
        }
        float curError = 0;
        for (int i = 0; i < n; ++i) {
          float diff = thisScale * (laux[i] & 0xff) + thisMin - x[xo + i];
          diff = useMad ? Math.abs(diff) : diff * diff;
          curError += weights[i] * diff;
        }
        if (curError < bestError) {
          System.arraycopy(laux, 0, L, lo, n);
          bestError = curError;
          scale = thisScale;
          min = thisMin;
        }
      }
    }
    theMin[mo] = -min;
    return scale;
  }

  /**
   * {@code make_qkx3_quants} with explicit weights (the importance-weighted k-quant path): like
   * {@link #makeQkx2Quants} but guards codes against a min near max.
   */
  static float makeQkx3Quants(
      int n,
      int nmax,
      float[] x,
      int xo,
      float[] weights,
      byte[] L,
      int lo,
      float[] theMin,
      int mo,
      byte[] laux,
      float rmin,
      float rdelta,
      int nstep,
      boolean useMad) {
    float min = x[xo];
    float max = x[xo];
    float sumW = weights[0];
    float sumX = sumW * x[xo];
    for (int i = 1; i < n; ++i) {
      if (x[xo + i] < min) {
        min = x[xo + i];
      }
      if (x[xo + i] > max) {
        max = x[xo + i];
      }
      float w = weights[i];
      sumW += w;
      sumX += w * x[xo + i];
    }
    if (min > 0) {
      min = 0;
    }
    if (max <= min) {
      for (int i = 0; i < n; ++i) {
        L[lo + i] = 0;
      }
      theMin[mo] = -min;
      return 0.f;
    }
    float iscale = nmax / (max - min);
    float scale = 1 / iscale;
    float bestMad = 0;
    for (int i = 0; i < n; ++i) {
      int l = nearestInt(iscale * (x[xo + i] - min));
      L[lo + i] = (byte) Math.max(0, Math.min(nmax, l));
      float diff = scale * (L[lo + i] & 0xff) + min - x[xo + i];
      diff = useMad ? Math.abs(diff) : diff * diff;
      bestMad += weights[i] * diff;
    }
    if (nstep < 1) {
      theMin[mo] = -min;
      return scale;
    }
    for (int is = 0; is <= nstep; ++is) {
      iscale = (rmin + rdelta * is + nmax) / (max - min);
      float sumL = 0;
      float sumL2 = 0;
      float sumXl = 0;
      for (int i = 0; i < n; ++i) {
        float v = iscale * (x[xo + i] - min);
        int l = v > 0 ? nearestInt(Math.min(v, nmax)) : 0;
        laux[i] = (byte) l;
        float w = weights[i];
        sumL += w * l;
        sumL2 += w * l * l;
        sumXl += w * l * x[xo + i];
      }
      float det = sumW * sumL2 - sumL * sumL;
      if (det > 0) {
        float thisScale = (sumW * sumXl - sumX * sumL) / det;
        float thisMin = (sumL2 * sumX - sumL * sumXl) / det;
        if (thisMin > 0) {
          thisMin = 0;
          thisScale = sumXl / sumL2;
        }
        float mad = 0;
        for (int i = 0; i < n; ++i) {
          float diff = thisScale * (laux[i] & 0xff) + thisMin - x[xo + i];
          diff = useMad ? Math.abs(diff) : diff * diff;
          mad += weights[i] * diff;
        }
        if (mad < bestMad) {
          System.arraycopy(laux, 0, L, lo, n);
          bestMad = mad;
          scale = thisScale;
          min = thisMin;
        }
      }
    }
    theMin[mo] = -min;
    return scale;
  }

  /**
   * {@code make_qp_quants}: codes {@code [0, nmax]} for non-negative values (the sub-block scales
   * and mins of Q4_K's weighted path), weighted by {@code quantWeights}; returns the scale.
   */
  static float makeQpQuants(int n, int nmax, float[] x, byte[] L, float[] quantWeights) {
    float max = 0;
    for (int i = 0; i < n; ++i) {
      max = Math.max(max, x[i]);
    }
    if (max < GROUP_MAX_EPS) {
      for (int i = 0; i < n; ++i) {
        L[i] = 0;
      }
      return 0.f;
    }
    float iscale = nmax / max;
    for (int i = 0; i < n; ++i) {
      L[i] = (byte) nearestInt(iscale * x[i]);
    }
    float scale = 1 / iscale;
    float bestMse = 0;
    for (int i = 0; i < n; ++i) {
      float diff = x[i] - scale * (L[i] & 0xff);
      float w = quantWeights[i];
      bestMse += w * diff * diff;
    }
    for (int is = -4; is <= 4; ++is) {
      if (is == 0) {
        continue;
      }
      float iscaleIs = (0.1f * is + nmax) / max;
      float scaleIs = 1 / iscaleIs;
      float mse = 0;
      for (int i = 0; i < n; ++i) {
        int l = nearestInt(iscaleIs * x[i]);
        l = Math.min(nmax, l);
        float diff = x[i] - scaleIs * l;
        float w = quantWeights[i];
        mse += w * diff * diff;
      }
      if (mse < bestMse) {
        bestMse = mse;
        iscale = iscaleIs;
      }
    }
    float sumlx = 0;
    float suml2 = 0;
    for (int i = 0; i < n; ++i) {
      int l = nearestInt(iscale * x[i]);
      l = Math.min(nmax, l);
      L[i] = (byte) l;
      float w = quantWeights[i];
      sumlx += w * x[i] * l;
      suml2 += w * l * l;
    }
    for (int itry = 0; itry < 5; ++itry) {
      int nChanged = 0;
      for (int i = 0; i < n; ++i) {
        float w = quantWeights[i];
        int li = L[i] & 0xff;
        float slx = sumlx - w * x[i] * li;
        float sl2 = suml2 - w * li * li;
        if (slx > 0 && sl2 > 0) {
          int newL = nearestInt(x[i] * sl2 / slx);
          newL = Math.min(nmax, newL);
          if (newL != li) {
            slx += w * x[i] * newL;
            sl2 += w * newL * newL;
            if (slx * slx * suml2 > sumlx * sumlx * sl2) {
              L[i] = (byte) newL;
              sumlx = slx;
              suml2 = sl2;
              ++nChanged;
            }
          }
        }
      }
      if (nChanged == 0) {
        break;
      }
    }
    return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
  }
}
