#!/usr/bin/python3
"""FedAvg in plain PyTorch + mpi4py, written the way Python FL frameworks (Flower, FedML,
FedLab, FLUTE) work: every process loads the whole data set, clients train a copy of the model,
their state dicts are pickled and sent to rank 0, which averages them (weighted by rows) and
broadcasts the new state dict.

    mpirun -np P /usr/bin/python3 fedavg_torch.py EXPORT_DIR [ROUNDS]

EXPORT_DIR is written by `fedhpc_bench export CONFIG DIR`: the same data set (Fashion-MNIST as
fedhpc prepared it, or the supermarket item sets as padded rows for the attention model), the same client partition (client_offsets), the same clients each round
(round_clients, fedhpc's sampler), the same initial weights (init_params, fedhpc's layout),
the same minibatches in the same order (batch_order: fedhpc's per-client shuffles) and the
hyperparameters (meta.txt). The models differ only by float rounding (summation order in the
two stacks' kernels), so their accuracies should agree closely.

Prints one line: torch,model=...;ranks=P;rounds=R,<median s/round>,<test accuracy>,<VmHWM MB of
this rank summed over ranks>,<test ROC-AUC of p(class 1), two classes only, else nan>. Round
time excludes the final evaluation. Models: mlp, cnn and attention (fedhpc's item-set model,
class weights as fedhpc's loss). Env FEDAVG_TORCH_DUMP=PATH (attention): rank 0 writes the
final parameters in fedhpc's flat float32 layout there, to compare with fedhpc's model.
"""
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from mpi4py import MPI


def read_meta(d):
    meta = {}
    with open(os.path.join(d, "meta.txt")) as f:
        for line in f:
            parts = line.split()
            if parts:
                meta[parts[0]] = parts[1:]
    return meta


class MLP(nn.Module):
    def __init__(self, d, hidden, k):
        super().__init__()
        widths = [d] + hidden + [k]
        self.layers = nn.ModuleList(nn.Linear(widths[i], widths[i + 1]) for i in range(len(widths) - 1))

    def forward(self, x):
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = F.relu(x)
        return x

    def load_fedhpc(self, p):
        off = 0
        with torch.no_grad():
            for layer in self.layers:
                fo, fi = layer.weight.shape
                w = p[off:off + fi * fo].reshape(fi, fo)
                off += fi * fo
                layer.weight.copy_(torch.from_numpy(w.T.copy()))
                layer.bias.copy_(torch.from_numpy(p[off:off + fo].copy()))
                off += fo
        assert off == p.size


class CNN(nn.Module):
    """McMahan et al. 2017: conv 5x5x32, pool, conv 5x5x64, pool, fc 512, softmax."""

    def __init__(self, k):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 5, padding=2)
        self.conv2 = nn.Conv2d(32, 64, 5, padding=2)
        self.fc1 = nn.Linear(7 * 7 * 64, 512)
        self.fc2 = nn.Linear(512, k)

    def forward(self, x):
        x = x.view(-1, 1, 28, 28)
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = F.relu(self.fc1(x.flatten(1)))
        return self.fc2(x)

    def load_fedhpc(self, p):
        # fedhpc: conv W [(ky*5+kx)*C + c, F]; fc1 input flattened channels-last [y, x, c]
        off = 0
        with torch.no_grad():
            for conv, cin in ((self.conv1, 1), (self.conv2, 32)):
                fo = conv.weight.shape[0]
                w = p[off:off + 25 * cin * fo].reshape(5, 5, cin, fo).transpose(3, 2, 0, 1)
                off += 25 * cin * fo
                conv.weight.copy_(torch.from_numpy(w.copy()))
                conv.bias.copy_(torch.from_numpy(p[off:off + fo].copy()))
                off += fo
            w = p[off:off + 3136 * 512].reshape(7, 7, 64, 512).transpose(3, 2, 0, 1).reshape(512, 3136)
            off += 3136 * 512
            self.fc1.weight.copy_(torch.from_numpy(w.copy()))
            self.fc1.bias.copy_(torch.from_numpy(p[off:off + 512].copy()))
            off += 512
            k = self.fc2.weight.shape[0]
            w = p[off:off + 512 * k].reshape(512, k)
            off += 512 * k
            self.fc2.weight.copy_(torch.from_numpy(w.T.copy()))
            self.fc2.bias.copy_(torch.from_numpy(p[off:off + k].copy()))
            off += k
        assert off == p.size


class Attention(nn.Module):
    """fedhpc's [model] type = attention (src/model/attn.c), same math and parameter layout:
    rows are L item indices as floats, -1 padding; X = E[items] (padding 0); Q, K, V = X Wq,
    X Wk, X Wv; per head softmax over the valid keys of Q_h K_h^T / sqrt(d/heads), padded
    queries give 0; H = X + A V; gates g = sigmoid(H u) (0 at padding); z = sum_j g_j H_j;
    logits = z Wc + bc. Parameters in fedhpc's flat order: E [items, d], Wq, Wk, Wv [d, d]
    (X Wq: [in, out]), u [d], Wc [d, classes], bc [classes]."""

    def __init__(self, items, d, heads, k):
        super().__init__()
        self.d, self.h = d, heads
        self.E = nn.Parameter(torch.zeros(items, d))
        self.Wq = nn.Parameter(torch.zeros(d, d))
        self.Wk = nn.Parameter(torch.zeros(d, d))
        self.Wv = nn.Parameter(torch.zeros(d, d))
        self.u = nn.Parameter(torch.zeros(d))
        self.Wc = nn.Parameter(torch.zeros(d, k))
        self.bc = nn.Parameter(torch.zeros(k))

    def forward(self, x):
        n, L = x.shape
        h, dh = self.h, self.d // self.h
        item = x.long()
        valid = item >= 0
        vf = valid.to(x.dtype)
        X = self.E[item.clamp(min=0)] * vf.unsqueeze(2)          # [n, L, d]
        Q = (X @ self.Wq).view(n, L, h, dh).transpose(1, 2)       # [n, h, L, dh]
        K = (X @ self.Wk).view(n, L, h, dh).transpose(1, 2)
        V = (X @ self.Wv).view(n, L, h, dh).transpose(1, 2)
        S = (Q @ K.transpose(2, 3)) * float(np.float32(1.0) / np.sqrt(np.float32(dh)))  # 1/sqrtf(dh)
        S = S.masked_fill(~valid[:, None, None, :], float("-inf"))
        A = torch.softmax(S, dim=3) * vf[:, None, :, None]       # padded queries: 0
        O = (A @ V).transpose(1, 2).reshape(n, L, self.d)
        H = X + O
        g = torch.sigmoid(H @ self.u) * vf                        # [n, L]
        z = (g.unsqueeze(2) * H).sum(1)                           # [n, d]
        return z @ self.Wc + self.bc

    def _params(self):
        return (self.E, self.Wq, self.Wk, self.Wv, self.u, self.Wc, self.bc)

    def load_fedhpc(self, p):
        off = 0
        with torch.no_grad():
            for t in self._params():
                t.copy_(torch.from_numpy(p[off:off + t.numel()].reshape(t.shape).copy()))
                off += t.numel()
        assert off == p.size

    def to_fedhpc(self):
        return torch.cat([t.detach().reshape(-1) for t in self._params()]).numpy()


def roc_auc(score, y):
    """P(score_pos > score_neg) + 0.5 P(equal), as fedhpc's metrics (average ranks for ties)."""
    s = np.asarray(score, dtype=np.float64)
    order = np.argsort(s, kind="mergesort")
    ss = s[order]
    ranks = np.empty(len(s))
    i = 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and ss[j + 1] == ss[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    pos = np.asarray(y) == 1
    npos, nneg = int(pos.sum()), int((~pos).sum())
    if npos == 0 or nneg == 0:
        return float("nan")
    return (ranks[pos].sum() - npos * (npos + 1) / 2.0) / (npos * nneg)


def vm_hwm_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def main():
    comm = MPI.COMM_WORLD
    rank, size = comm.Get_rank(), comm.Get_size()
    torch.set_num_threads(1)  # one core per process, as fedhpc's ranks
    d = sys.argv[1]
    meta = read_meta(d)
    feat, k = int(meta["features"][0]), int(meta["classes"][0])
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else int(meta["rounds"][0])
    m = int(meta["clients_per_round"][0])
    B, E, lr = int(meta["batch"][0]), int(meta["epochs"][0]), float(meta["lr"][0])
    kind = meta["model"][0]

    # every process loads the whole data set (as the frameworks do)
    xtr = torch.from_numpy(np.fromfile(os.path.join(d, "train_x.f32"), dtype="<f4").reshape(-1, feat))
    ytr = torch.from_numpy(np.fromfile(os.path.join(d, "train_y.i32"), dtype="<i4").astype(np.int64))
    xte = torch.from_numpy(np.fromfile(os.path.join(d, "test_x.f32"), dtype="<f4").reshape(-1, feat))
    yte = torch.from_numpy(np.fromfile(os.path.join(d, "test_y.i32"), dtype="<i4").astype(np.int64))
    off = np.fromfile(os.path.join(d, "client_offsets.i64"), dtype="<i8")
    sched = np.fromfile(os.path.join(d, "round_clients.i32"), dtype="<i4").reshape(-1, m)
    init = np.fromfile(os.path.join(d, "init_params.f32"), dtype="<f4")
    order = torch.from_numpy(np.fromfile(os.path.join(d, "batch_order.i32"), dtype="<i4").astype(np.int64))
    order_off = np.fromfile(os.path.join(d, "batch_order_offsets.i64"), dtype="<i8")

    # the loss: sum_i w[y_i] CE_i / n as fedhpc (not torch's weighted mean, which divides by sum w)
    cw = torch.tensor([float(v) for v in meta.get("class_weights", ["1"] * k)], dtype=torch.float32)
    weighted = bool((cw != 1).any())
    gamma = float(meta.get("focal_gamma", ["0"])[0])

    def batch_loss(z, y):
        """fedhpc's loss of a minibatch: sum_i w[y_i] (1 - p_i)^gamma (-log p_i) / n, p_i the
        probability of the true class (gamma 0: class-weighted cross-entropy)."""
        if gamma == 0:
            if weighted:
                return F.cross_entropy(z, y, weight=cw, reduction="sum") / len(y)
            return F.cross_entropy(z, y)
        if z.shape[1] == 1:  # one sigmoid logit: log p_t = logsigmoid(s z), s = +1 for y = 1, -1 for y = 0
            logpt = F.logsigmoid(z[:, 0] * (2.0 * y.to(z.dtype) - 1.0))
        else:
            logpt = F.log_softmax(z, dim=1).gather(1, y[:, None])[:, 0]
        return (-cw[y] * (1.0 - logpt.exp()).pow(gamma) * logpt).sum() / len(y)
    if kind == "cnn":
        model = CNN(k)
    elif kind == "attention":
        model = Attention(int(meta["items"][0]), int(meta["attn_dim"][0]), int(meta["attn_heads"][0]), k)
    else:
        model = MLP(feat, [int(h) for h in meta["hidden"]], k)
    model.load_fedhpc(init)
    global_state = {name: t.clone() for name, t in model.state_dict().items()}

    walls = []
    for r in range(1, rounds + 1):
        comm.Barrier()
        t0 = time.perf_counter()
        ids = sched[r - 1]
        sizes = off[ids + 1] - off[ids]
        # contiguous, row-balanced blocks of clients per rank (as fedhpc places them)
        cum = np.concatenate([[0], np.cumsum(sizes)])
        lo = np.searchsorted(cum, cum[-1] * rank / size, side="left")
        hi = np.searchsorted(cum, cum[-1] * (rank + 1) / size, side="left")
        if rank == size - 1:
            hi = len(ids)
        updates = []
        for i in range(lo, hi):
            c = int(ids[i])
            x, y = xtr[off[c]:off[c + 1]], ytr[off[c]:off[c + 1]]
            model.load_state_dict(global_state)
            opt = torch.optim.SGD(model.parameters(), lr=lr)
            o0 = int(order_off[(r - 1) * m + i])
            for e in range(E):
                perm = order[o0 + e * len(x):o0 + (e + 1) * len(x)]
                for b0 in range(0, len(x), B if B > 0 else len(x)):
                    idx = perm[b0:b0 + B] if B > 0 else perm
                    opt.zero_grad()
                    loss = batch_loss(model(x[idx]), y[idx])
                    loss.backward()
                    opt.step()
            updates.append((len(x), {n: t.clone() for n, t in model.state_dict().items()}))
        # the frameworks' way: pickled state dicts to rank 0, averaged there, broadcast back
        gathered = comm.gather(updates, root=0)
        if rank == 0:
            allu = [u for part in gathered for u in part]
            total = float(sum(n for n, _ in allu))
            new = {name: sum(sd[name] * (n / total) for n, sd in allu) for name in global_state}
        else:
            new = None
        global_state = comm.bcast(new, root=0)
        walls.append(time.perf_counter() - t0)

    acc = auc = float("nan")
    if rank == 0:
        model.load_state_dict(global_state)
        with torch.no_grad():
            correct = 0
            p1 = []
            for b0 in range(0, len(xte), 1000):
                out = model(xte[b0:b0 + 1000])
                correct += (out.argmax(1) == yte[b0:b0 + 1000]).sum().item()
                if k == 2:
                    p1.append(torch.softmax(out, 1)[:, 1].numpy())
        acc = correct / len(xte)
        if k == 2:
            auc = roc_auc(np.concatenate(p1), yte.numpy())
        dump = os.environ.get("FEDAVG_TORCH_DUMP")
        if dump and hasattr(model, "to_fedhpc"):  # the final model in fedhpc's flat layout
            model.to_fedhpc().astype("<f4").tofile(dump)
    hwm = comm.reduce(vm_hwm_mb(), op=MPI.SUM, root=0)
    if rank == 0:
        print("torch,model=%s;ranks=%d;rounds=%d,%.6f,%.4f,%.1f,%.4f" %
              (kind, size, rounds, float(np.median(walls)), acc, hwm, auc), flush=True)


if __name__ == "__main__":
    main()
