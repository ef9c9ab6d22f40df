// ggml's reference Q8_0 and Q4_0 row quantizers (quantize_row_q8_0_ref / quantize_row_q4_0_ref,
// ggml/src/ggml-quants.c, MIT licence), transcribed for BlockQuantizerBench --ggml-c: the bench
// writes its fp32 input to a file, this program quantizes it `rounds` times per type, prints the
// median and best GB/s of fp32 input, and writes the bytes so the bench can compare them with
// Compactor's. llama.cpp builds ggml-quants.c into ggml-base, which gets no -march flags (only the
// CPU backend does), so the reference runs as baseline x86-64 code: no FMA, hence no contraction of
// `x * id + 8.5f`, and fp32 -> fp16 by ggml's portable ggml_compute_fp32_to_fp16 (ggml-impl.h)
// unless F16C is enabled. Build as ggml-base is built: gcc -O3 -std=gnu11 quantize_ref.c -lm.
// With -march=native add -ffp-contract=off: GNU C contracts by default, and the fused
// `x * id + 8.5f` rounds differently from ggml's build on ties (seen on a 16 M-value input).
#ifdef __F16C__
#include <immintrin.h>
#endif
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define QK4_0 32
#define QK8_0 32
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

typedef struct { uint16_t d; uint8_t qs[QK4_0 / 2]; } block_q4_0;
typedef struct { uint16_t d; int8_t qs[QK8_0]; } block_q8_0;

static inline float fp32_from_bits(uint32_t w) {
  float f;
  memcpy(&f, &w, sizeof f);
  return f;
}

static inline uint32_t fp32_to_bits(float f) {
  uint32_t w;
  memcpy(&w, &f, sizeof w);
  return w;
}

#ifdef __F16C__
static uint16_t fp32_to_fp16(float f) { return _cvtss_sh(f, 0); }
#else
// ggml_compute_fp32_to_fp16 (from the FP16 library), round to nearest even
static uint16_t fp32_to_fp16(float f) {
  const float scale_to_inf = 0x1.0p+112f;
  const float scale_to_zero = 0x1.0p-110f;
  float base = (fabsf(f) * scale_to_inf) * scale_to_zero;
  const uint32_t w = fp32_to_bits(f);
  const uint32_t shl1_w = w + w;
  const uint32_t sign = w & UINT32_C(0x80000000);
  uint32_t bias = shl1_w & UINT32_C(0xFF000000);
  if (bias < UINT32_C(0x71000000)) {
    bias = UINT32_C(0x71000000);
  }
  base = fp32_from_bits((bias >> 1) + UINT32_C(0x07800000)) + base;
  const uint32_t bits = fp32_to_bits(base);
  const uint32_t exp_bits = (bits >> 13) & UINT32_C(0x00007C00);
  const uint32_t mantissa_bits = bits & UINT32_C(0x00000FFF);
  const uint32_t nonsign = exp_bits + mantissa_bits;
  return (sign >> 16) | (shl1_w > UINT32_C(0xFF000000) ? UINT16_C(0x7E00) : nonsign);
}
#endif

static void quantize_row_q4_0_ref(const float *restrict x, block_q4_0 *restrict y, int64_t k) {
  static const int qk = QK4_0;
  const int nb = k / qk;
  for (int i = 0; i < nb; i++) {
    float amax = 0.0f;  // absolute max
    float max = 0.0f;
    for (int j = 0; j < qk; j++) {
      const float v = x[i * qk + j];
      if (amax < fabsf(v)) {
        amax = fabsf(v);
        max = v;
      }
    }
    const float d = max / -8;
    const float id = d ? 1.0f / d : 0.0f;
    y[i].d = fp32_to_fp16(d);
    for (int j = 0; j < qk / 2; ++j) {
      const float x0 = x[i * qk + 0 + j] * id;
      const float x1 = x[i * qk + qk / 2 + j] * id;
      const uint8_t xi0 = MIN(15, (int8_t)(x0 + 8.5f));
      const uint8_t xi1 = MIN(15, (int8_t)(x1 + 8.5f));
      y[i].qs[j] = xi0;
      y[i].qs[j] |= xi1 << 4;
    }
  }
}

static void quantize_row_q8_0_ref(const float *restrict x, block_q8_0 *restrict y, int64_t k) {
  const int nb = k / QK8_0;
  for (int i = 0; i < nb; i++) {
    float amax = 0.0f;  // absolute max
    for (int j = 0; j < QK8_0; j++) {
      const float v = x[i * QK8_0 + j];
      amax = MAX(amax, fabsf(v));
    }
    const float d = amax / ((1 << 7) - 1);
    const float id = d ? 1.0f / d : 0.0f;
    y[i].d = fp32_to_fp16(d);
    for (int j = 0; j < QK8_0; ++j) {
      const float x0 = x[i * QK8_0 + j] * id;
      y[i].qs[j] = roundf(x0);
    }
  }
}

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

// usage: quantize_ref IN.f32 ROWS COLS ROUNDS OUT_PREFIX
int main(int argc, char **argv) {
  if (argc != 6) {
    fprintf(stderr, "usage: %s IN.f32 ROWS COLS ROUNDS OUT_PREFIX\n", argv[0]);
    return 2;
  }
  long rows = atol(argv[2]), cols = atol(argv[3]);
  int rounds = atoi(argv[4]);
  size_t n = (size_t)rows * cols;
  float *x = malloc(n * sizeof(float));
  FILE *f = fopen(argv[1], "rb");
  if (!f || fread(x, sizeof(float), n, f) != n) {
    fprintf(stderr, "cannot read %zu floats from %s\n", n, argv[1]);
    return 1;
  }
  fclose(f);
  for (int type = 0; type < 2; type++) {
    size_t bytes = n / 32 * (type == 0 ? sizeof(block_q8_0) : sizeof(block_q4_0));
    uint8_t *y = malloc(bytes);
    double *gbps = malloc(rounds * sizeof(double));
    size_t row_bytes = bytes / rows;
    // warm-up passes, then the timed rounds
    for (int r = -5; r < rounds; r++) {
      double t0 = now();
      for (long i = 0; i < rows; i++) {
        if (type == 0) {
          quantize_row_q8_0_ref(x + i * cols, (block_q8_0 *)(y + i * row_bytes), cols);
        } else {
          quantize_row_q4_0_ref(x + i * cols, (block_q4_0 *)(y + i * row_bytes), cols);
        }
      }
      double dt = now() - t0;
      if (r >= 0) gbps[r] = n * 4.0 / dt / 1e9;
    }
    qsort(gbps, rounds, sizeof(double), cmp);
    printf("%s %.4f %.4f\n", type == 0 ? "Q8_0" : "Q4_0", gbps[rounds / 2], gbps[rounds - 1]);
    char path[4096];
    snprintf(path, sizeof path, "%s.%s", argv[5], type == 0 ? "q8_0" : "q4_0");
    FILE *o = fopen(path, "wb");
    fwrite(y, 1, bytes, o);
    fclose(o);
    free(y);
    free(gbps);
  }
  return 0;
}
