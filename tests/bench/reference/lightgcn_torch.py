#!/usr/bin/python3
"""LightGCN + BPR in plain PyTorch on the pooled MovieLens graph: the centralized run of
fedhpc's [model] lightgcn (docs/recommend.md), written the usual PyTorch way (a sparse
normalised adjacency, torch.sparse.mm propagation every step, torch.optim.Adam).

    /usr/bin/python3 lightgcn_torch.py data/movielens.csv.gz ROUNDS DIM LAYERS LR BATCH WD SEED

The data are prepared as `fedhpc prepare movielens` does (rating >= 4; users and items indexed
in id order; each user's latest floor(0.2 n) interactions by (timestamp, movieId) held out), and
the printed counts can be checked against prepare's. One round = one epoch over the training
interactions in minibatches of BATCH, each positive with one uniform negative that is not a
training item of the user (numpy's generator, not fedhpc's streams: the minibatches differ).

Prints: torch,lightgcn;rounds=R,<median s/round>,<NDCG@10>,<P@10>,<R@10>,<VmHWM MB>.
Round times exclude the final evaluation.
"""
import csv
import gzip
import math
import sys
import time

import numpy as np
import torch


def vmhwm_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def load(path):
    rows, movies = [], set()
    with gzip.open(path, "rt", newline="") as f:
        for r in csv.DictReader(f):
            m, u, ts, rt = int(r["movieId"]), int(r["userId"]), int(r["timestamp"]), float(r["rating"])
            movies.add(m)
            if rt >= 4.0:
                rows.append((u, ts, m))
    mid = {m: i for i, m in enumerate(sorted(movies))}
    uid = {u: i for i, u in enumerate(sorted({r[0] for r in rows}))}
    rows.sort()
    train, held = [], []
    i = 0
    while i < len(rows):
        j = i
        while j < len(rows) and rows[j][0] == rows[i][0]:
            j += 1
        nh = int(math.floor(0.2 * (j - i)))
        for k in range(i, j):
            (held if k >= j - nh else train).append((uid[rows[k][0]], mid[rows[k][2]]))
        i = j
    return train, held, len(uid), len(mid)


def main():
    path = sys.argv[1]
    rounds, dim, K = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    lr, B, wd, seed = float(sys.argv[5]), int(sys.argv[6]), float(sys.argv[7]), int(sys.argv[8])
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    train, held, nu, ni = load(path)
    print(f"data: {len(train) + len(held)} interactions ({len(held)} held out), {nu} users, {ni} items", file=sys.stderr)
    tu = np.array([t[0] for t in train], dtype=np.int64)
    ti = np.array([t[1] for t in train], dtype=np.int64)
    du = np.bincount(tu, minlength=nu).astype(np.float64)
    di = np.bincount(ti, minlength=ni).astype(np.float64)
    w = 1.0 / np.sqrt(du[tu] * di[ti])
    idx = np.concatenate([np.stack([tu, nu + ti]), np.stack([nu + ti, tu])], axis=1)
    A = torch.sparse_coo_tensor(torch.from_numpy(idx), torch.from_numpy(np.concatenate([w, w]).astype(np.float32)),
                                (nu + ni, nu + ni)).coalesce().to_sparse_csr()
    E0 = torch.nn.Parameter(0.1 * torch.randn(nu + ni, dim))
    opt = torch.optim.Adam([E0], lr=lr)
    seen = [set() for _ in range(nu)]
    for u, i in train:
        seen[u].add(i)

    def final():
        e, acc = E0, E0
        for _ in range(K):
            e = torch.sparse.mm(A, e) if hasattr(torch.sparse, "mm") else A @ e
            acc = acc + e
        return acc / (K + 1)

    times = []
    n = len(train)
    for r in range(rounds):
        t0 = time.perf_counter()
        order = rng.permutation(n)
        for b0 in range(0, n, B):
            bi = order[b0:b0 + B]
            u = tu[bi]
            p = ti[bi]
            q = rng.integers(0, ni, size=len(bi))
            for k in range(len(bi)):  # a negative that is not a training item of the user
                tries = 0
                while q[k] in seen[u[k]] and tries < 64:
                    q[k] = rng.integers(0, ni)
                    tries += 1
            F = final()
            uu, pp, qq = torch.from_numpy(u), torch.from_numpy(nu + p), torch.from_numpy(nu + q)
            x = (F[uu] * (F[pp] - F[qq])).sum(1)
            reg = (E0[uu].pow(2).sum() + E0[pp].pow(2).sum() + E0[qq].pow(2).sum()) / len(bi)
            loss = torch.nn.functional.softplus(-x).mean() + 0.5 * wd * reg
            opt.zero_grad()
            loss.backward()
            opt.step()
        times.append(time.perf_counter() - t0)
    with torch.no_grad():
        F = final()
        U, I = F[:nu], F[nu:]
        hv = [[] for _ in range(nu)]
        for u, i in held:
            hv[u].append(i)
        sp = sr = sn = 0.0
        users = 0
        for u in range(nu):
            if not hv[u]:
                continue
            s = I @ U[u]
            if seen[u]:
                s[list(seen[u])] = -float("inf")
            top = torch.topk(s, 10).indices.tolist()
            rel = set(hv[u])
            hits = [1 if t in rel else 0 for t in top]
            dcg = sum(h / math.log2(k + 2) for k, h in enumerate(hits))
            idcg = sum(1 / math.log2(k + 2) for k in range(min(10, len(rel))))
            sp += sum(hits) / 10
            sr += sum(hits) / len(rel)
            sn += dcg / idcg
            users += 1
    print(f"torch,lightgcn;rounds={rounds},{float(np.median(times)):.4f},{sn / users:.6f},{sp / users:.6f},"
          f"{sr / users:.6f},{vmhwm_mb():.1f}")


if __name__ == "__main__":
    main()
