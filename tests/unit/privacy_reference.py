#!/usr/bin/env python3
"""Independent reference values for tests/unit/test_privacy.c (the RDP accountant).

Run:  python3 tests/unit/privacy_reference.py        (needs python3-mpmath; about 7 minutes)

Nothing here shares code or numerical method with src/privacy/accountant.c:

* RDP of one step of the sampled Gaussian mechanism (Mironov, Talwar, Zhang 2019) at order
  alpha is log(A_alpha) / (alpha - 1) with
      A_alpha = E_{z ~ N(0, s^2)} [ ((1 - q) + q * exp((2z - 1) / (2 s^2)))^alpha ].
  - integer alpha: the exact binomial sum
      A_alpha = sum_k C(alpha, k) (1-q)^(alpha-k) q^k exp((k^2 - k) / (2 s^2))
    evaluated in mpmath at 50 digits (no log-space tricks needed);
  - fractional alpha: the expectation above integrated numerically (mpmath.quad,
    tanh-sinh, 50 digits) straight from the definition of the Renyi divergence,
    not the two-series erfc expansion the C code uses.
  The script checks itself by also integrating at a few integer orders and comparing with
  the exact sum.
* q = 1: closed form alpha / (2 s^2).
* epsilon: eps(alpha) = T * rdp(alpha) - (log(delta) + log(alpha)) / (alpha - 1)
                        + log((alpha - 1) / alpha)     (Balle et al. 2020, as in Opacus),
  minimised over the Opacus DEFAULT_ALPHAS, in mpmath.
* sigma for a target epsilon: mpmath.findroot (secant) on eps(sigma) - target.

The printed C initialisers are pasted into tests/unit/test_privacy.c.
"""
import sys

import mpmath as mp

mp.mp.dps = 50

# Opacus DEFAULT_ALPHAS, built with the same float expressions (the C side does the same).
ORDERS = [1 + x / 10.0 for x in range(1, 100)] + list(range(12, 64))
ORDERS = [float(a) for a in ORDERS]


def log_a_int(q, s, alpha):
    q, s = mp.mpf(q), mp.mpf(s)
    n = int(alpha)
    tot = mp.mpf(0)
    for k in range(n + 1):
        tot += mp.binomial(n, k) * (1 - q) ** (n - k) * q ** k * mp.exp((k * k - k) / (2 * s * s))
    return mp.log(tot)


def log_a_quad(q, s, alpha):
    q, s, al = mp.mpf(q), mp.mpf(s), mp.mpf(alpha)
    norm = 1 / (s * mp.sqrt(2 * mp.pi))

    def f(z):
        return norm * mp.exp(-z * z / (2 * s * s)) * ((1 - q) + q * mp.exp((2 * z - 1) / (2 * s * s))) ** al

    # mass of N(0,s^2) near 0, the crossover of the mixture near z0, the tilted peak near alpha
    z0 = s * s * mp.log(1 / q - 1) + mp.mpf(1) / 2 if q < 1 else mp.mpf(0)
    pts = sorted(set([mp.mpf(0), z0, al, -8 * s, al + 8 * s, z0 - 8 * s, z0 + 8 * s]))
    pts = [-mp.inf] + pts + [mp.inf]
    return mp.log(mp.quad(f, pts, maxdegree=10))


def rdp(q, s, alpha):
    """RDP of one step (as an mpf); mp.inf for no privacy."""
    if q == 0:
        return mp.mpf(0)
    if s == 0:
        return mp.inf
    if q == 1:
        return mp.mpf(alpha) / (2 * mp.mpf(s) ** 2)
    if float(alpha).is_integer():
        la = log_a_int(q, s, alpha)
    else:
        la = log_a_quad(q, s, alpha)
    return la / (mp.mpf(alpha) - 1)


_cache = {}


def rdp_vec(q, s):
    key = (q, s)
    if key not in _cache:
        _cache[key] = [rdp(q, s, a) for a in ORDERS]
    return _cache[key]


def epsilon(rdps, delta):
    best, best_a = mp.inf, None
    ld = mp.log(mp.mpf(delta))
    for a, r in zip(ORDERS, rdps):
        am = mp.mpf(a)
        e = r - (ld + mp.log(am)) / (am - 1) + mp.log((am - 1) / am)
        if e < best:
            best, best_a = e, a
    return best, best_a


def eps_config(parts, delta):
    """parts: list of (q, sigma, steps) composed."""
    tot = [mp.mpf(0)] * len(ORDERS)
    for q, s, t in parts:
        tot = [x + t * y for x, y in zip(tot, rdp_vec(q, s))]
    return epsilon(tot, delta)


def g(x):
    return mp.nstr(x, 17, min_fixed=-mp.inf, max_fixed=mp.inf) if x != mp.inf else "INFINITY"


def main():
    # --- self-check: quadrature against the exact binomial sum at integer orders
    worst = mp.mpf(0)
    for q, s, a in [(0.01, 1.1, 2), (0.1, 0.8, 7), (0.5, 2.0, 3), (0.05, 0.5, 12), (0.2, 1.0, 40)]:
        x, y = log_a_int(q, s, a), log_a_quad(q, s, a)
        worst = max(worst, abs(x - y) / abs(x))
    print("/* self-check: max rel. diff quad vs exact sum at integer orders = %s */" % mp.nstr(worst, 3))
    if worst > 1e-20:
        sys.exit("quadrature self-check failed")

    # --- single steps
    single = [(0.01, 1.1, 2.0), (0.01, 1.1, 32.0), (0.01, 1.1, 1.5), (0.01, 1.1, ORDERS[98]),
              (0.1, 0.8, 1.1), (0.1, 0.8, ORDERS[44]), (0.5, 2.0, ORDERS[22]), (0.001, 4.0, 63.0),
              (0.05, 0.5, ORDERS[16]), (0.2, 1.0, 12.0), (0.3, 0.7, 8.0), (0.02, 3.0, ORDERS[3])]
    print("static const struct { double q, sigma, alpha, rdp; } k_rdp_ref[] = {")
    for q, s, a in single:
        print("    {%r, %r, %r, %s}," % (q, s, a, g(rdp(q, s, a))))
    print("};")

    # --- epsilon of homogeneous runs
    configs = [(0.01, 1.1, 10000, 1e-5), (0.004, 1.0, 15000, 1e-5), (0.1, 2.0, 500, 1e-6),
               (0.02, 0.7, 1000, 1e-5), (0.256, 1.3, 60, 1e-5), (1.0, 5.0, 10, 1e-5)]
    print("static const struct { double q, sigma; int64_t steps; double delta, eps, order; } k_eps_ref[] = {")
    for q, s, t, d in configs:
        e, a = eps_config([(q, s, t)], d)
        print("    {%r, %r, %d, %r, %s, %r}," % (q, s, t, d, g(e), a))
    print("};")

    # --- heterogeneous composition
    het = [(0.01, 1.1, 3000), (0.05, 2.0, 200), (0.1, 0.8, 50)]
    e, a = eps_config(het, 1e-5)
    print("/* composition of (q, sigma, steps) = %s, delta 1e-5 */" % (het,))
    print("static const double k_het_eps = %s, k_het_order = %r;" % (g(e), a))

    # --- sigma for a target epsilon (secant on eps(sigma) - target)
    print("static const struct { double q; int64_t steps; double delta, target, sigma; } k_sigma_ref[] = {")
    for q, t, d, target, guess in [(0.01, 10000, 1e-5, 3.0, 1.0), (0.1, 100, 1e-5, 1.0, 2.0)]:
        def f(s):
            return epsilon([t * rdp(q, s, a) for a in ORDERS], d)[0] - target
        mp.mp.dps = 30
        sig = mp.findroot(f, (mp.mpf(guess), mp.mpf(guess) * 1.1), solver="secant", tol=1e-20,
                          verify=False)
        if abs(f(sig)) > 1e-9:
            sys.exit("findroot did not converge")
        mp.mp.dps = 50
        print("    {%r, %d, %r, %r, %s}," % (q, t, d, target, mp.nstr(sig, 12)))
    print("};")


if __name__ == "__main__":
    main()
