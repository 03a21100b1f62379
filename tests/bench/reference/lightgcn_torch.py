#!/usr/bin/python3
"""LightGCN + BPR in plain PyTorch: the centralized run of fedhpc's [model] lightgcn
(docs/recommend.md) on the pooled MovieLens graph, written the usual PyTorch way (a sparse
normalised adjacency, torch.sparse.mm propagation every step, autograd), trained on exactly what
fedhpc trains on:

    fedhpc_bench export-gnn CONFIG EXPORT_DIR        (tests/bench/bench.c)
    /usr/bin/python3 lightgcn_torch.py EXPORT_DIR [ITEMS_OUT.f32]

The export holds the graph (training edges as local user, item; fedhpc's 1/sqrt(degree) factors),
the held-out edges, fedhpc's initial item and user embeddings, and every round's (user, positive,
negative) triples in training order as fedhpc's counter-based streams drew them. One fedhpc round
on one client = one call of its local training: `epochs` epochs of Adam steps on minibatches of
`batch` triples, Adam's moments reset at the start of the round, the user embeddings carried
over. Adam is written out as fedhpc's gnn_train does it (torch.optim.Adam adds eps to the
bias-corrected sqrt(v); fedhpc adds it to sqrt(v) and folds the correction into the step size):
  m = 0.9 m + 0.1 g;  v = 0.999 v + 0.001 g^2;  p -= lr sqrt(1 - 0.999^t) / (1 - 0.9^t) * m / (sqrt(v) + 1e-8)
The loss is fedhpc's: mean BPR -log sigmoid(u.(i - j)) over the batch + weight_decay / 2 * the
squared norms of the batch's layer-0 rows (user, positive, negative), averaged over the batch.

Prints: torch,lightgcn;rounds=R,<median s/round>,<NDCG@10>,<P@10>,<R@10>,<VmHWM MB>.
Round times exclude loading the export and the final evaluation. ITEMS_OUT: the final item
embeddings [items, dim] as little-endian float32 (fedhpc's model parameters).
"""
import math
import os
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


def main():
    d = sys.argv[1]
    meta = {}
    with open(os.path.join(d, "meta.txt")) as f:
        for line in f:
            k, v = line.split()
            meta[k] = v
    nu, ni, dim, K = int(meta["users"]), int(meta["items"]), int(meta["dim"]), int(meta["layers"])
    rounds, epochs, B = int(meta["rounds"]), int(meta["epochs"]), int(meta["batch"])
    lr, wd = float(meta["lr"]), float(meta["weight_decay"])
    b1, b2, eps = float(meta["beta1"]), float(meta["beta2"]), float(meta["eps"])
    torch.set_num_threads(1)

    def raw(name, dt):
        return np.fromfile(os.path.join(d, name), dtype=dt)

    eu, ei = raw("edge_user.i32", "<i4").astype(np.int64), raw("edge_item.i32", "<i4").astype(np.int64)
    hu, hi = raw("held_user.i32", "<i4").astype(np.int64), raw("held_item.i32", "<i4").astype(np.int64)
    du, di = torch.from_numpy(raw("du.f32", "<f4")), torch.from_numpy(raw("di.f32", "<f4"))
    tri = torch.from_numpy(raw("triples.i32", "<i4").astype(np.int64)).view(-1, 3)
    nnz = len(eu)
    # the normalised adjacency of the (users + items) graph (COO, as LightGCN code usually keeps it),
    # coefficient du[u] * di[i] formed in float as fedhpc forms it
    w = (du[torch.from_numpy(eu)] * di[torch.from_numpy(ei)])
    idx = torch.from_numpy(np.concatenate([np.stack([eu, nu + ei]), np.stack([nu + ei, eu])], axis=1))
    A = torch.sparse_coo_tensor(idx, torch.cat([w, w]), (nu + ni, nu + ni)).coalesce()
    U0 = torch.from_numpy(raw("init_users.f32", "<f4")).view(nu, dim)
    I0 = torch.from_numpy(raw("init_items.f32", "<f4")).view(ni, dim)
    E0 = torch.cat([U0, I0]).clone().requires_grad_(True)

    def final(E):
        e, acc = E, E
        for _ in range(K):
            e = torch.sparse.mm(A, e)
            acc = acc + e
        return acc / (K + 1)

    times = []
    pos = 0
    for r in range(rounds):
        t0 = time.perf_counter()
        m = torch.zeros_like(E0)
        v = torch.zeros_like(E0)
        b1t = b2t = 1.0
        for _ in range(epochs):
            for b0 in range(0, nnz, B):
                nb = min(B, nnz - b0)
                t = tri[pos:pos + nb]
                pos += nb
                uu, pp, qq = t[:, 0], nu + t[:, 1], nu + t[:, 2]
                F = final(E0)
                x = (F[uu] * (F[pp] - F[qq])).sum(1)
                reg = (E0[uu].pow(2).sum() + E0[pp].pow(2).sum() + E0[qq].pow(2).sum()) / nb
                loss = torch.nn.functional.softplus(-x).mean() + 0.5 * wd * reg
                E0.grad = None
                loss.backward()
                with torch.no_grad():
                    g = E0.grad
                    b1t *= b1
                    b2t *= b2
                    lr_t = lr * math.sqrt(1.0 - b2t) / (1.0 - b1t)
                    m.mul_(b1).add_(g, alpha=1.0 - b1)
                    v.mul_(b2).addcmul_(g, g, value=1.0 - b2)
                    E0.sub_(lr_t * m / (v.sqrt() + eps))
        times.append(time.perf_counter() - t0)
    with torch.no_grad():
        F = final(E0)
        U, I = F[:nu], F[nu:]
        users = np.unique(hu)
        S = U[torch.from_numpy(users)] @ I.T
        row = np.full(nu, -1, dtype=np.int64)
        row[users] = np.arange(len(users))
        keep = row[eu] >= 0  # training items are not recommended
        S[torch.from_numpy(row[eu][keep]), torch.from_numpy(ei[keep])] = -float("inf")
        top = torch.topk(S, 10, dim=1).indices.numpy()
        rel = [set() for _ in users]
        for u, i in zip(row[hu], hi):
            rel[u].add(int(i))
        sp = sr = sn = 0.0
        for k in range(len(users)):
            hits = [1 if t in rel[k] else 0 for t in top[k]]
            dcg = sum(h / math.log2(j + 2) for j, h in enumerate(hits))
            idcg = sum(1 / math.log2(j + 2) for j in range(min(10, len(rel[k]))))
            sp += sum(hits) / 10
            sr += sum(hits) / len(rel[k])
            sn += dcg / idcg
        if len(sys.argv) > 2:
            E0[nu:].detach().numpy().astype("<f4").tofile(sys.argv[2])
    n = len(users)
    print(f"torch,lightgcn;rounds={rounds},{float(np.median(times)):.4f},{sn / n:.6f},{sp / n:.6f},"
          f"{sr / n:.6f},{vmhwm_mb():.1f}")


if __name__ == "__main__":
    main()
