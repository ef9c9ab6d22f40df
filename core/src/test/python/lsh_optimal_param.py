"""Reference (b, r) for MinHashTest.optimalBandsMatchDatasketchSearch.

The same search datasketch's MinHashLSH makes (datasketch/lsh.py, _optimal_param): minimise
0.5 * FP + 0.5 * FN over b * r <= num_perm, the areas integrated with scipy.integrate.quad.
Run: /usr/bin/python3 core/src/test/python/lsh_optimal_param.py
"""
from scipy.integrate import quad


def optimal(threshold, num_perm, fp_w=0.5, fn_w=0.5):
    best, opt = float("inf"), None
    for b in range(1, num_perm + 1):
        for r in range(1, num_perm // b + 1):
            fp = quad(lambda s: 1 - (1 - s**r) ** b, 0.0, threshold)[0]
            fn = quad(lambda s: 1 - (1 - (1 - s**r) ** b), threshold, 1.0)[0]
            err = fp_w * fp + fn_w * fn
            if err < best:
                best, opt = err, (b, r)
    return opt


if __name__ == "__main__":
    for t, n in [(0.8, 128), (0.5, 128), (0.9, 128), (0.7, 256), (0.8, 256)]:
        print(t, n, optimal(t, n))
