#!/usr/bin/env python3
"""Markdown tables of docs/he.md from the CSV rows of jobs/he/cost.sh (fedhpc_he_bench).

    python3 jobs/he/table.py runs/he/cost.csv [more.csv ...]

Prints three tables: the per-core rates, the measured rounds, and the extrapolation of the
issue's sizes (100 clients a round, 100k and 1M parameters, key_bits 2048 and 3072) from the
rates — labelled as extrapolated, never mixed with the measured rows.
"""
import math
import sys


def parse(line):
    f = line.strip().split(",")
    d = {"name": f[0]}
    for kv in f[1].split(";"):
        k, v = kv.split("=")
        d[k] = v
    for kv in f[2:]:
        k, v = kv.split("=")
        d[k] = v
    return d


rows = []
for path in sys.argv[1:]:
    for line in open(path):
        if line.startswith("he_"):
            rows.append(parse(line))
rates = {int(r["key_bits"]): r for r in rows if r["name"] == "he_rates"}
costs = [r for r in rows if r["name"] == "he_cost"]

print("| key_bits | keygen s | raw powm r^n mod n^2 /s | encrypt /s | CRT encrypt /s (fixed-base?) | CRT from halves /s "
      "| decrypt /s | ct product /s | powm_sec mod p^2, exponent n mod p(p-1) /s | exponent p /s "
      "| slots | coordinates/s/core: powm limit | encrypt | CRT encrypt | decrypt |")
print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for kb in sorted(rates):
    r = rates[kb]
    f = lambda k: float(r[k])
    g = lambda k: "%.1f" % float(r[k]) if k in r else "-"
    print("| %d | %.2f | %.1f | %.1f | %.1f (%s) | %s | %.1f | %.0f | %s | %s | %s | %.0f | %.0f | %.0f | %.0f |" % (
        kb, f("keygen_s"), f("powm_r^n_mod_n2_per_s"), f("encrypt_per_s"), f("encrypt_crt_per_s"),
        "yes" if r.get("fixed_base") == "1" else "no", g("encrypt_crt_halves_per_s"), f("decrypt_per_s"), f("ct_mul_per_s"), g("powm_sec_mod_p2_per_s"), g("powm_sec_p_mod_p2_per_s"),
        r["slots"], f("coords_per_s_core_powm_limit"),
        f("coords_per_s_core_encrypt"), f("coords_per_s_core_encrypt_crt"), f("coords_per_s_core_decrypt")))
print()
print("| parameters | clients | key_bits | ranks x threads | slots | plain CPU s | secagg CPU s | HE encrypt CPU s "
      "| HE aggregate CPU s (rank 0) | HE decrypt CPU s | HE wall s (enc / agg / dec) | plain wall s | secagg wall s "
      "| bytes/client plain -> HE | expansion | exact |")
print("|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---|---:|---:|")
for r in costs:
    f = lambda k: float(r[k])
    print("| %s | %s | %s | %s x %s | %s | %.4f | %.4f | %.2f | %.3f (%.3f) | %.2f | %.1f / %.2f / %.1f | %.4f | %.4f "
          "| %s -> %s | %.2f | %s |" % (
              format(int(r["P"]), ","), r["clients"], r["key_bits"], r["ranks"], r["omp_threads"], r["slots"],
              f("plain_cpu_s"), f("secagg_cpu_s"), f("he_encrypt_cpu_s"), f("he_aggregate_cpu_s"),
              f("he_aggregate_cpu_rank0_s"), f("he_decrypt_cpu_s"), f("he_encrypt_s"), f("he_aggregate_s"),
              f("he_decrypt_s"), f("plain_s"), f("secagg_s"), format(int(r["plain_bytes_client"]), ","),
              format(int(r["he_bytes_client"]), ","), f("expansion"), r["exact"]))
print()
print("| parameters | key_bits | ciphertexts a client | EXTRAPOLATED: encrypt s/client/core (CRT) | "
      "encrypt core-s, 100 clients | aggregator products s (lower bound) | decrypt s, one client, one core | "
      "bytes a client plain -> HE | expansion |")
print("|---:|---:|---:|---:|---:|---:|---:|---|---:|")
for P in (100000, 1000000):
    for kb in sorted(rates):
        r = rates[kb]
        slot = 64 + math.ceil(math.log2(100))
        k = (kb - 1) // slot
        words = P + 8
        ncts = -(-words // k)
        ct = -(-2 * kb // 8)
        enc = ncts / float(r["encrypt_crt_per_s"])
        agg = 99 * ncts / float(r["ct_mul_per_s"])
        dec = ncts / float(r["decrypt_per_s"])
        hb = 16 + ncts * ct
        print("| %s | %d | %s | %.1f | %.0f | %.1f | %.1f | %s -> %s | %.2f |" % (
            format(P, ","), kb, format(ncts, ","), enc, 100 * enc, agg, dec, format(words * 8, ","),
            format(hb, ","), hb / (words * 8)))
print()
print("| parameters | key_bits | ciphertexts a client | HE encrypt CPU s (all 100 clients) | per client "
      "| HE aggregate CPU s (rank 0) | HE decrypt CPU s | plain round CPU s | secagg round CPU s | HE / secagg "
      "| bytes a client plain -> HE | expansion | exact |")
print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|")
for r in costs:
    if r["clients"] != "100" or int(r["P"]) < 100000:
        continue
    f = lambda k: float(r[k])
    he = f("he_encrypt_cpu_s") + f("he_aggregate_cpu_s") + f("he_decrypt_cpu_s")
    ncts = (int(r["he_bytes_client"]) - 16) // (-(-2 * int(r["key_bits"]) // 8))
    print("| %s | %s | %s | **%.1f** | %.1f | %.3f (%.3f) | %.1f | %.3f | %.2f | %.0fx | %s -> %s | %.2f | %s |" % (
        format(int(r["P"]), ","), r["key_bits"], format(ncts, ","), f("he_encrypt_cpu_s"),
        f("he_encrypt_cpu_s") / 100, f("he_aggregate_cpu_s"), f("he_aggregate_cpu_rank0_s"), f("he_decrypt_cpu_s"),
        f("plain_cpu_s"), f("secagg_cpu_s"), he / f("secagg_cpu_s"), format(int(r["plain_bytes_client"]), ","),
        format(int(r["he_bytes_client"]), ","), f("expansion"), r["exact"]))
