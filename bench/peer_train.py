#!/usr/bin/python3
"""A PyTorch peer for asiarch's training throughput: training tokens per second, one thread.

Run it with Debian's PyTorch, /usr/bin/python3 (the `python3` on PATH may lack torch), best
under a tuned allocator (glibc malloc maps and faults in the pages of large tensors again and
again; mimalloc or tcmalloc keep them, as asiarch, which links mimalloc; jemalloc was slower):
    LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libmimalloc.so.2 /usr/bin/python3 bench/peer_train.py
    /usr/bin/python3 bench/peer_train.py --check     # chunkwise delta rule vs a token loop
Options: --steps N (timed steps, default 100, after --warmup 10), --repeats R (best of R timed
windows), --models deltanet,softmax_attention, --chunk C (64: 5% faster than 32 under mimalloc,
a tie under glibc, on a 2-core EPYC), --json. Compare with
`./build/tools/asiarch train deltanet --task lm --steps 200` on the same machine, same hour.

The model is asiarch's explore LM (training/model.cpp, lang/baselines/{deltanet,
softmax_attention}.arch, same parameter counts): byte embedding, 2 x (RMSNorm, mixer, residual,
RMSNorm, SwiGLU MLP, residual), final RMSNorm, tied head; D=64, 4 heads, batch 8 x 128 bytes.
Written as a careful PyTorch user would: q/k/v/beta and MLP gate/up projections fused into one
matmul each (the same parameters, concatenated), depthwise conv1d, the delta rule in chunkwise
(WY/UT) form, AdamW(foreach=True) (1.13's multi-tensor AdamW), clip_grad_norm_.
"""
import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # before torch loads: OpenBLAS reads these at start

import argparse
import gzip
import json
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

D, LAYERS, HEADS, VOCAB, SEQ, BATCH = 64, 2, 4, 256, 128, 8
LR, WARMUP, WEIGHT_DECAY, CLIP, EPS = 3e-3, 20, 0.1, 1.0, 1e-6
HIDDEN = (8 * D // 3 + 7) // 8 * 8  # SwiGLU width, about 8/3 D rounded up to a multiple of 8
CORPUS, HELD_OUT = "/usr/share/dictd/gcide.dict.dz", 32768  # asiarch's LM corpus (gzip) and its eval tail


def rms_norm(x, gain):
    return x * torch.rsqrt(x.square().mean(-1, keepdim=True) + EPS) * gain


def l2_norm(x):
    return x * torch.rsqrt(x.square().sum(-1, keepdim=True) + EPS)


def xavier(rows, cols):
    return torch.randn(rows, cols) * math.sqrt(2.0 / (rows + cols))


def conv_taps(channels, k=4):  # Conv1d's default U(-1/sqrt(k), 1/sqrt(k)), as asiarch
    return (torch.rand(channels, 1, k) * 2 - 1) / math.sqrt(k)


def causal_conv(x, taps):
    """Depthwise causal convolution of x [B, T, n] with taps [n, 1, K]: out_t reads x_{t-K+1..t}."""
    x = F.pad(x.transpose(1, 2), (taps.size(-1) - 1, 0))
    return F.conv1d(x, taps, groups=taps.size(0)).transpose(1, 2)


def delta_rule_loop(q, k, v, beta):
    """The definition, token by token: S_t = S_{t-1} - beta_t k_t (k_t^T S_{t-1} - v_t^T),
    o_t = S_t^T q_t. q, k [B, H, T, dk], v [B, H, T, dv], beta [B, H, T]."""
    S = q.new_zeros(q.size(0), q.size(1), q.size(3), v.size(3))
    out = []
    for t in range(q.size(2)):
        k_t, b_t = k[:, :, t], beta[:, :, t, None, None]
        error = (k_t.unsqueeze(-2) @ S).squeeze(-2) - v[:, :, t]
        S = S - b_t * k_t.unsqueeze(-1) * error.unsqueeze(-2)
        out.append((q[:, :, t].unsqueeze(-2) @ S).squeeze(-2))
    return torch.stack(out, 2)


def delta_rule_chunked(q, k, v, beta, chunk):
    """The same recurrence in chunks of C tokens (Yang et al., 2024, arXiv:2406.06484, sec. 3:
    the WY representation of the product of Householder-like updates, computed with the UT
    transform). Writing u_t = beta_t (v_t - S_{t-1}^T k_t), S_t = S_{t-1} + k_t u_t^T. Inside a
    chunk starting from state S, u_t = beta_t (v_t - S^T k_t - sum_{j<t} (k_t.k_j) u_j), i.e.
    (I + L) U = diag(beta) (V - K S) with L = strict_tril(diag(beta) K K^T). One triangular solve
    per chunk gives W = (I+L)^-1 diag(beta) K and U0 = (I+L)^-1 diag(beta) V, so U = U0 - W S;
    then O = Q S + tril(Q K^T) U and S' = S + K^T U. Only this last part runs chunk by chunk."""
    B, H, T, dk = k.shape
    pad = -T % chunk  # padding tokens have beta = 0 and k = 0: they change no state
    if pad:
        q, k, v = (F.pad(x, (0, 0, 0, pad)) for x in (q, k, v))
        beta = F.pad(beta, (0, pad))
    n = (T + pad) // chunk
    q, k, v = (x.reshape(B, H, n, chunk, -1) for x in (q, k, v))
    beta = beta.reshape(B, H, n, chunk, 1)
    upper = torch.ones(chunk, chunk, dtype=torch.bool, device=q.device).triu()
    L = (beta * k @ k.transpose(-1, -2)).masked_fill(upper, 0)  # strictly lower
    rhs = torch.cat([beta * k, beta * v], -1)
    WU = torch.linalg.solve_triangular(L, rhs, upper=False, unitriangular=True)  # (I + L)^-1 rhs
    W, U0 = WU[..., :dk], WU[..., dk:]
    QK = (q @ k.transpose(-1, -2)).masked_fill(upper.triu(1), 0)  # causal, diagonal included
    S = q.new_zeros(B, H, dk, v.size(-1))
    out = []
    for i in range(n):
        U = U0[:, :, i] - W[:, :, i] @ S
        out.append(q[:, :, i] @ S + QK[:, :, i] @ U)
        S = S + k[:, :, i].transpose(-1, -2) @ U
    return torch.stack(out, 2).reshape(B, H, n * chunk, -1)[:, :, :T]


class DeltaNet(nn.Module):
    """lang/baselines/deltanet.arch: q, k, v = silu(short_conv(linear(x))) per head, q and k L2
    normalised, beta = sigmoid(linear(x)) per head, delta rule, per-head RMSNorm, output linear."""

    def __init__(self, chunk):
        super().__init__()
        self.chunk = chunk
        # q, k, v and beta projections as one [3D + H, D] matrix: the same parameters, one matmul
        self.w_in = nn.Parameter(torch.cat([xavier(D, D), xavier(D, D), xavier(D, D), xavier(HEADS, D)]))
        self.taps = nn.Parameter(conv_taps(3 * D))  # q, k and v convolutions, 3D channels
        self.o_gain = nn.Parameter(torch.ones(D // HEADS))
        self.w_out = nn.Parameter(torch.zeros(D, D))  # asiarch starts residual branches at zero

    def forward(self, x):
        B, T, _ = x.shape
        y = F.linear(x, self.w_in)
        qkv = F.silu(causal_conv(y[..., :3 * D], self.taps))
        q, k, v = qkv.view(B, T, 3, HEADS, D // HEADS).permute(2, 0, 3, 1, 4).unbind(0)
        beta = torch.sigmoid(y[..., 3 * D:]).transpose(1, 2)
        o = delta_rule_chunked(l2_norm(q), l2_norm(k), v, beta, self.chunk)
        o = rms_norm(o, self.o_gain).transpose(1, 2).reshape(B, T, D)
        return F.linear(o, self.w_out)


class SoftmaxAttention(nn.Module):
    """lang/baselines/softmax_attention.arch: q and k = short_conv(linear(x)), v = linear(x),
    causal softmax attention with scores q.k / sqrt(dk), output linear."""

    def __init__(self, chunk=None):
        super().__init__()
        self.w_in = nn.Parameter(torch.cat([xavier(D, D), xavier(D, D), xavier(D, D)]))
        self.taps = nn.Parameter(conv_taps(2 * D))
        self.w_out = nn.Parameter(torch.zeros(D, D))

    def forward(self, x):
        B, T, _ = x.shape
        y = F.linear(x, self.w_in)
        qk = causal_conv(y[..., :2 * D], self.taps)
        q, k = qk.view(B, T, 2, HEADS, D // HEADS).permute(2, 0, 3, 1, 4).unbind(0)
        v = y[..., 2 * D:].reshape(B, T, HEADS, D // HEADS).transpose(1, 2)
        scores = q @ k.transpose(-1, -2) / math.sqrt(D // HEADS)
        future = torch.ones(T, T, dtype=torch.bool).triu(1)
        o = torch.softmax(scores.masked_fill(future, float("-inf")), -1) @ v
        return F.linear(o.transpose(1, 2).reshape(B, T, D), self.w_out)


class Block(nn.Module):
    def __init__(self, mixer):
        super().__init__()
        self.mixer_gain, self.mlp_gain = nn.Parameter(torch.ones(D)), nn.Parameter(torch.ones(D))
        self.mixer = mixer
        self.w_gate_up = nn.Parameter(torch.cat([xavier(HIDDEN, D), xavier(HIDDEN, D)]))  # fused
        self.w_down = nn.Parameter(torch.zeros(D, HIDDEN))

    def forward(self, h):
        h = h + self.mixer(rms_norm(h, self.mixer_gain))
        gate, up = F.linear(rms_norm(h, self.mlp_gain), self.w_gate_up).chunk(2, -1)
        return h + F.linear(F.silu(gate) * up, self.w_down)


class LanguageModel(nn.Module):
    def __init__(self, mixer_class, chunk):
        super().__init__()
        self.embedding = nn.Parameter(torch.randn(VOCAB, D) * 0.02)
        self.blocks = nn.ModuleList(Block(mixer_class(chunk)) for _ in range(LAYERS))
        self.final_gain = nn.Parameter(torch.ones(D))

    def forward(self, tokens):
        h = F.embedding(tokens, self.embedding)
        for block in self.blocks:
            h = block(h)
        return F.linear(rms_norm(h, self.final_gain), self.embedding)  # tied head


MODELS = {"deltanet": DeltaNet, "softmax_attention": SoftmaxAttention}


def load_corpus():
    """GCIDE (asiarch's corpus) when installed, else random bytes: the same throughput either way."""
    if os.path.exists(CORPUS):
        with gzip.open(CORPUS, "rb") as f:
            return torch.frombuffer(bytearray(f.read()), dtype=torch.uint8), CORPUS
    return torch.randint(0, 256, (1 << 20,), dtype=torch.uint8), "random bytes (no GCIDE)"


def train(name, corpus, steps, warmup_steps, repeats, chunk):
    torch.manual_seed(1)
    model = LanguageModel(MODELS[name], chunk)
    params = sum(p.numel() for p in model.parameters())
    # AdamW with weight decay on matrices only (asiarch's grouping), foreach (multi-tensor) kernels
    groups = [{"params": [p for p in model.parameters() if p.dim() >= 2], "weight_decay": WEIGHT_DECAY},
              {"params": [p for p in model.parameters() if p.dim() < 2], "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=LR, betas=(0.9, 0.95), eps=1e-8, foreach=True)
    total = warmup_steps + steps * repeats
    window = torch.arange(SEQ + 1)

    def step(i):
        # linear warm-up, then cosine decay to a tenth (training/trainer.cpp)
        progress = max(0, i - WARMUP) / max(1, total - WARMUP)
        lr = LR * (i + 1) / WARMUP if i < WARMUP else LR * (0.1 + 0.45 * (1 + math.cos(math.pi * progress)))
        for group in opt.param_groups:
            group["lr"] = lr
        rows = corpus[torch.randint(0, corpus.numel() - HELD_OUT - SEQ - 1, (BATCH, 1)) + window].long()
        loss = F.cross_entropy(model(rows[:, :-1]).reshape(-1, VOCAB), rows[:, 1:].reshape(-1))
        value = loss.item()  # asiarch reads every step's loss too (divergence check)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), CLIP)
        opt.step()
        return value

    for i in range(warmup_steps):
        step(i)
    rates, cpu_rates, i = [], [], warmup_steps
    for _ in range(repeats):
        start, cpu_start = time.perf_counter(), time.process_time()
        for _ in range(steps):
            loss = step(i)
            i += 1
        rates.append(steps * BATCH * SEQ / (time.perf_counter() - start))
        cpu_rates.append(steps * BATCH * SEQ / (time.process_time() - cpu_start))  # per CPU second: less hurt by a busy machine
    return {"model": name, "params": params, "tokens_per_second": max(rates), "all_tokens_per_second": rates,
            "cpu_tokens_per_second": max(cpu_rates), "final_loss": loss, "chunk": chunk if name == "deltanet" else None}


def check():
    """Chunkwise vs token loop in float64, values and gradients, at a length that is not a
    multiple of the chunk size."""
    torch.manual_seed(0)
    B, H, T = 2, 4, 100  # T: not a multiple of 32 or 64
    q, k, v, target = (torch.randn(B, H, T, 16, dtype=torch.float64) for _ in range(4))
    inputs = [x.requires_grad_() for x in (l2_norm(q), l2_norm(k), v, torch.rand(B, H, T, dtype=torch.float64))]
    ref = delta_rule_loop(*inputs)
    ref_grads = torch.autograd.grad((ref * target).sum(), inputs)
    ok = True
    for chunk in (32, 64):
        out = delta_rule_chunked(*inputs, chunk)
        grads = torch.autograd.grad((out * target).sum(), inputs)
        value_diff = (out - ref).abs().max().item()
        grad_diff = max((g - r).abs().max().item() for g, r in zip(grads, ref_grads))
        passed = value_diff < 1e-10 and grad_diff < 1e-10
        ok = ok and passed
        print("check chunk %d, T=%d: max |out diff| %.2e, max |grad diff| %.2e: %s"
              % (chunk, T, value_diff, grad_diff, "ok" if passed else "FAILED"))
    return ok


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("--steps", type=int, default=100, help="timed steps per repeat")
    parser.add_argument("--warmup", type=int, default=10, help="untimed steps first")
    parser.add_argument("--repeats", type=int, default=3, help="timed windows; the best is reported")
    parser.add_argument("--models", default="deltanet,softmax_attention")
    parser.add_argument("--chunk", type=int, default=64, help="delta rule chunk size")
    parser.add_argument("--check", action="store_true", help="check the chunkwise delta rule and exit")
    parser.add_argument("--json", action="store_true", help="one JSON line instead of text")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)
    if args.check:
        raise SystemExit(0 if check() else 1)
    corpus, source = load_corpus()
    with open("/proc/cpuinfo") as f:
        cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "unknown")
    env = {"torch": torch.__version__, "threads": torch.get_num_threads(), "cpu": cpu,
           "ld_preload": os.environ.get("LD_PRELOAD", ""), "corpus": source, "batch": BATCH, "seq_len": SEQ,
           "steps": args.steps, "warmup": args.warmup, "repeats": args.repeats}
    if not args.json:
        print("torch %(torch)s, %(threads)d thread, %(cpu)s, LD_PRELOAD=%(ld_preload)s, corpus %(corpus)s" % env)
    results = []
    for name in args.models.split(","):
        r = train(name, corpus, args.steps, args.warmup, args.repeats, args.chunk)
        results.append(r)
        if not args.json:
            print("%-18s %7d params  %8.0f tokens/s (per CPU second %.0f; best of %d x %d steps; chunk %s)"
                  % (name, r["params"], r["tokens_per_second"], r["cpu_tokens_per_second"], args.repeats, args.steps, r["chunk"]))
    if args.json:
        print(json.dumps({"env": env, "results": results}))


if __name__ == "__main__":
    main()
