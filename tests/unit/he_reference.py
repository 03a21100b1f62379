#!/usr/bin/env python3
"""Independent reference values for tests/unit/test_he.c (Paillier, src/he/paillier.c).

Run:  python3 tests/unit/he_reference.py     (plain Python 3 big integers; under a second)

Nothing here shares code with the C implementation. It follows the published formulas of
Paillier (1999) with a general generator g (here g = n + 1) and the textbook decryption:
    Enc(m; r) = g^m r^n mod n^2                       (pow(g, m, n^2): no (1 + m n) shortcut)
    lambda = lcm(p - 1, q - 1),  L(x) = (x - 1) / n,  mu = L(g^lambda mod n^2)^-1 mod n
    Dec(c) = L(c^lambda mod n^2) mu mod n             (no CRT)
    Enc(a) Enc(b) mod n^2 = Enc(a + b mod n),  Enc(a)^k mod n^2 = Enc(k a mod n)
and the packing of include/fedhpc/he.h: slot t of a plaintext holds x_t + 2^63 at bit t*s.
The fixed test primes are the Mersenne primes 2^521 - 1 and 2^607 - 1 (n of 1128 bits).
The printed C initialisers are pasted into tests/unit/test_he.c.
"""
from math import gcd

p = 2**607 - 1
q = 2**521 - 1
n = p * q
n2 = n * n
g = n + 1
lam = (p - 1) * (q - 1) // gcd(p - 1, q - 1)


def L(x):
    return (x - 1) // n


mu = pow(L(pow(g, lam, n2)), -1, n)


def enc(m, r):
    assert 0 <= m < n and 0 < r < n and gcd(r, n) == 1
    return pow(g, m, n2) * pow(r, n, n2) % n2


def dec(c):
    return L(pow(c, lam, n2)) * mu % n


m1 = n - 5                       # m1 + m2 wraps mod n
m2 = 12
r1 = 3**700 % n
r2 = 7**650 % n
k = 123456789
c1 = enc(m1, r1)
c2 = enc(m2, r2)
cadd = c1 * c2 % n2
cmul = pow(c1, k, n2)
assert dec(c1) == m1 and dec(c2) == m2
assert dec(cadd) == (m1 + m2) % n == 7
assert dec(cmul) == k * m1 % n

# packing: 3 vectors of 5 int64 words, slot bits s = 64 + ceil(log2 3) = 66
s = 66
I64 = 2**63
xs = [[-1, 0, -I64, I64 - 1, 12345],
      [7, -9, 3, I64 - 1, -12345],
      [-2**40, 2**62, -I64, 5, 1]]


def pack(x):
    return sum((v + I64) << (s * t) for t, v in enumerate(x))


packed = [pack(x) for x in xs]
total = sum(packed)
assert total < 2**(5 * s)


def wrap(v):
    v %= 2**64
    return v - 2**64 if v >= I64 else v


sums = [wrap(sum(x[t] for x in xs)) for t in range(5)]
# the same sum through encryption: Enc(pack(x_i)) multiplied, decrypted
rs = [5**(300 + i) % n for i in range(3)]
cprod = 1
for pk, r in zip(packed, rs):
    cprod = cprod * enc(pk, r) % n2
assert dec(cprod) == total


def h(name, v):
    print('static const char *%s =\n    "%s";' % (name, format(v, 'x')))


h("REF_M1", m1); h("REF_M2", m2); h("REF_R1", r1); h("REF_R2", r2)
h("REF_C1", c1); h("REF_C2", c2); h("REF_CADD", cadd); h("REF_CMUL", cmul)
print("#define REF_K %dUL" % k)
h("REF_MUL_PLAIN", k * m1 % n)
for i, pk in enumerate(packed):
    h("REF_PACK%d" % i, pk)
print("static const int64_t REF_SUMS[5] = {%s};" %
      ", ".join("INT64_MIN" if v == -I64 else "%dLL" % v if v != -I64 else "" for v in sums))
