// ggml's reference Q8_0 and Q4_0 row quantizers (quantize_row_q8_0_ref / quantize_row_q4_0_ref,
// ggml/src/ggml-quants.c, MIT licence), transcribed for BlockQuantizerBench --ggml-c: the bench
// writes its fp32 input to a file, this program quantizes it `rounds` times per type, prints the
// median and best GB/s of fp32 input, and writes the bytes so the bench can compare them with
// Compactor's. fp32 -> fp16 is _cvtss_sh (F16C, round to nearest even), as GGML_FP32_TO_FP16 is
// on x86 with F16C. Build: gcc -O3 -march=native quantize_ref.c -o quantize_ref -lm
#include <immintrin.h>
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

static uint16_t fp32_to_fp16(float f) { return _cvtss_sh(f, 0); }

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
