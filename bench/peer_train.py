#!/usr/bin/python3
"""A PyTorch peer for asiarch's training throughput: training tokens per second, one thread.

Run it with Debian's PyTorch, /usr/bin/python3 (the `python3` on PATH may lack torch), best
under a tuned allocator (glibc malloc maps and faults in the pages of large tensors again and
again; mimalloc or tcmalloc keep them, as asiarch, which links mimalloc; jemalloc was slower):
    LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libmimalloc.so.2 /usr/bin/python3 bench/peer_train.py
    /usr/bin/python3 bench/peer_train.py --check [--asiarch build/tools/asiarch]
                                  # every chunkwise form vs its token loop, [logits vs asiarch's]
Options: --steps N (timed steps, default 100, after --warmup 10), --repeats R (best of R timed
windows), --models (default: all seven baselines), --chunk C (default: 16 for gla, 64 for the
others, the fastest of 16, 32 and 64 on a 2-core EPYC), --asiarch BIN (after each model, time
`BIN train NAME --task lm` as the peer is timed: after each of the peer's timed windows, a window
of asiarch's, steps steps after --warmup steps, from runs of --warmup and of --warmup + steps
steps since `train` reports one figure per run; best of the repeats for both, so that a busy
spell of the machine hurts neither more; also the longer runs' best figure over all their
steps), --json.

The models are asiarch's explore LM (training/model.cpp, lang/baselines/*.arch, with the same
parameter counts): byte embedding, 2 x (RMSNorm, mixer, residual, RMSNorm, SwiGLU MLP,
residual), final RMSNorm, tied head; D=64, 4 heads, batch 8 x 128 bytes. Written as a careful
PyTorch user would: each mixer's projections of x and the MLP's gate/up fused into one matmul
(the same parameters, concatenated), one depthwise conv1d over the convolved channels, the delta
rules in chunkwise WY/UT form and the decayed linear attentions (GLA, Mamba-2, RetNet, linear
attention) in chunkwise form, AdamW(foreach=True) (1.13's multi-tensor AdamW), clip_grad_norm_.
"""
import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # before torch loads: OpenBLAS reads these at start

import argparse
import gzip
import json
import math
import subprocess
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


def delta_rule_loop(q, k, v, beta, g=None):
    """The definition, token by token: S_t = a_t S_{t-1} - beta_t k_t (a_t k_t^T S_{t-1} - v_t^T),
    o_t = S_t^T q_t, with a_t = exp(g_t) for the gated rule (g [B, H, T]) and 1 without g.
    q, k [B, H, T, dk], v [B, H, T, dv], beta [B, H, T]."""
    S = q.new_zeros(q.size(0), q.size(1), q.size(3), v.size(3))
    out = []
    for t in range(q.size(2)):
        k_t, b_t = k[:, :, t], beta[:, :, t, None, None]
        if g is not None:
            S = S * g[:, :, t].exp()[..., None, None]
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


def decay_attn_loop(q, k, v, g):
    """The definition, token by token: S_t = diag(exp g_t) S_{t-1} + k_t v_t^T, o_t = S_t^T q_t,
    with g None (linear attention), [B, H, T] (one decay per head) or [B, H, T, dk] (per key)."""
    S = q.new_zeros(q.size(0), q.size(1), q.size(3), v.size(3))
    out = []
    for t in range(q.size(2)):
        if g is not None:
            S = S * (g[:, :, t].exp()[..., None] if g.dim() == 4 else g[:, :, t].exp()[..., None, None])
        S = S + k[:, :, t].unsqueeze(-1) * v[:, :, t].unsqueeze(-2)
        out.append((q[:, :, t].unsqueeze(-2) @ S).squeeze(-2))
    return torch.stack(out, 2)


def to_chunks(chunk, *xs):
    """Pads the time axis (2) to a multiple of chunk with zeros and splits it: [B, H, n, C, ...]."""
    T = xs[0].size(2)
    pad = -T % chunk
    out = []
    for x in xs:
        if pad:
            x = F.pad(x, (0, 0, 0, pad)) if x.dim() == 4 else F.pad(x, (0, pad))
        out.append(x.reshape(x.size(0), x.size(1), (T + pad) // chunk, chunk, *x.shape[3:]))
    return out


def head_decay_factors(q, k, G):
    """With G [B, H, n, C] the cumulative log decay of one decay per head inside each chunk: the
    queries decayed from the chunk's start, the keys decayed to its end, and the whole chunk's
    decay [B, H, n, 1, 1] (the state's factor)."""
    return q * G.exp().unsqueeze(-1), k * (G[..., -1:] - G).exp().unsqueeze(-1), G[..., -1].exp()[..., None, None]


def decay_attn_chunked(q, k, v, g, chunk):
    """decay_attn_loop in chunks (the chunkwise form of GLA, Yang et al., 2023, arXiv:2312.06635,
    and of Mamba-2's SSD, Dao and Gu, 2024): with G the cumulative log decay inside a chunk,
    O = (Q * exp G) S + (causal mask * decay(t, i) * q_t.k_i) V and
    S' = exp(G_C) S + (K * exp(G_C - G))^T V. Per-key decays build the [C, C, dk] table of
    exp(G_t - G_i) for i <= t, which never overflows (fla's kernels use secondary chunks for
    the same reason). Padding tokens have k = 0 and g = 0."""
    B, H, T, dk = k.shape
    if g is None:
        g = q.new_zeros(B, H, T)
    q, k, v, g = to_chunks(chunk, q, k, v, g.to(q.dtype))  # float32 tables (RetNet) in q's precision
    G = g.cumsum(3)
    causal = torch.ones(chunk, chunk, dtype=torch.bool, device=q.device).tril()
    if G.dim() == 4:  # one decay per head: [B, H, n, C]
        decay = (G.unsqueeze(-1) - G.unsqueeze(-2)).masked_fill(~causal, float("-inf")).exp()
        A = (q @ k.transpose(-1, -2)) * decay
        q_in, k_out, last = head_decay_factors(q, k, G)
    else:  # one per key channel: [B, H, n, C, dk]
        decay = (G.unsqueeze(-2) - G.unsqueeze(-3)).masked_fill(~causal.unsqueeze(-1), float("-inf")).exp()
        A = torch.einsum("...tc,...ic,...tic->...ti", q, k, decay)
        q_in, k_out, last = q * G.exp(), k * (G[..., -1:, :] - G).exp(), G[..., -1, :].exp().unsqueeze(-1)
    S = q.new_zeros(B, H, dk, v.size(-1))
    out = []
    for i in range(q.size(2)):
        out.append(q_in[:, :, i] @ S + A[:, :, i] @ v[:, :, i])
        S = last[:, :, i] * S + k_out[:, :, i].transpose(-1, -2) @ v[:, :, i]
    return torch.stack(out, 2).reshape(B, H, -1, v.size(-1))[:, :, :T]


def gated_delta_chunked(q, k, v, beta, g, chunk):
    """delta_rule_loop with decays, in chunks (Gated DeltaNet, Yang, Kautz and Hatamizadeh, 2024,
    arXiv:2412.06464: the WY form of delta_rule_chunked with decays). With G the cumulative log
    decay inside a chunk, Gamma[t, j] = exp(G_t - G_j) and w_t = beta_t (v_t - a_t S_{t-1}^T k_t):
    (I + L) W = diag(beta) V - diag(beta exp G) K S with L = strict_tril(diag(beta) (K K^T * Gamma)),
    so W = U0 - Wk S; O = diag(exp G) Q S + tril(Q K^T * Gamma) W; S' = exp(G_C) S + (K exp(G_C - G))^T W."""
    B, H, T, dk = k.shape
    q, k, v, beta, g = to_chunks(chunk, q, k, v, beta, g.to(q.dtype))
    G = g.cumsum(3)
    upper = torch.ones(chunk, chunk, dtype=torch.bool, device=q.device).triu()
    gamma = (G.unsqueeze(-1) - G.unsqueeze(-2)).masked_fill(upper.triu(1), float("-inf")).exp()
    b = beta.unsqueeze(-1)
    L = (b * (k @ k.transpose(-1, -2)) * gamma).masked_fill(upper, 0)
    rhs = torch.cat([b * G.exp().unsqueeze(-1) * k, b * v], -1)
    WU = torch.linalg.solve_triangular(L, rhs, upper=False, unitriangular=True)
    Wk, U0 = WU[..., :dk], WU[..., dk:]
    QK = (q @ k.transpose(-1, -2)) * gamma
    q_in, k_out, last = head_decay_factors(q, k, G)
    S = q.new_zeros(B, H, dk, v.size(-1))
    out = []
    for i in range(q.size(2)):
        W = U0[:, :, i] - Wk[:, :, i] @ S
        out.append(q_in[:, :, i] @ S + QK[:, :, i] @ W)
        S = last[:, :, i] * S + k_out[:, :, i].transpose(-1, -2) @ W
    return torch.stack(out, 2).reshape(B, H, -1, v.size(-1))[:, :, :T]


def heads(x, count=HEADS):
    """[B, T, n] -> [B, H, T, n / H]."""
    return x.view(x.size(0), x.size(1), count, -1).transpose(1, 2)


def merge(x):
    """[B, H, T, m] -> [B, T, H m]."""
    return x.transpose(1, 2).reshape(x.size(0), x.size(2), -1)


class Projections(nn.Module):
    """Linear maps of x of the given widths as one matmul, and one depthwise causal convolution over
    the first `convolved` output channels, followed by `activation` over them in one call; forward
    gives the pieces in order."""

    def __init__(self, widths, convolved, activation=None):
        super().__init__()
        self.activation = activation
        # The convolved channels are the first pieces' whole.
        self.pieces_convolved = next(i for i in range(len(widths) + 1) if sum(widths[:i]) == convolved)
        self.widths, self.convolved = widths, convolved
        self.weight = nn.Parameter(torch.cat([xavier(w, D) for w in widths]))
        self.taps = nn.Parameter(conv_taps(convolved))

    def forward(self, x):
        y = F.linear(x, self.weight)
        first, rest = self.widths[:self.pieces_convolved], self.widths[self.pieces_convolved:]
        convolved = causal_conv(y[..., :self.convolved], self.taps)
        if self.activation is not None:
            convolved = self.activation(convolved)
        convolved = convolved.split(first, -1)
        return convolved + y[..., self.convolved:].split(rest, -1)


class GLA(nn.Module):
    """lang/baselines/gla.arch: q, k = short_conv(linear(x)) of width D/2, v = linear(x), log decay
    logsigmoid(low-rank linear(x)) / temperature per head, gated linear attention with per-key
    decays, RMSNorm gated by silu(linear(x)), output linear."""

    # Each parameter's pieces in `asiarch export`'s module (in order, joined along the first axis).
    EXPORTED = {"inputs.weight": ["q_proj.weight", "k_proj.weight", "v_proj.weight", "decay_low.weight", "gate_proj.weight"],
                "inputs.taps": ["q_conv.taps", "k_conv.taps"], "w_decay": ["decay_proj.weight"],
                "log_temperature": ["g.log_temperature"], "o_gain": ["o_norm.gain"], "w_out": ["y.weight"]}

    def __init__(self, chunk):
        super().__init__()
        self.chunk = chunk
        self.inputs = Projections([D // 2, D // 2, D, 16, D], D)  # q, k (convolved), v, decay rank 16, gate
        self.w_decay = nn.Parameter(xavier(D // 2, 16))
        self.log_temperature = nn.Parameter(torch.zeros(HEADS))
        self.o_gain = nn.Parameter(torch.ones(D // HEADS))
        self.w_out = nn.Parameter(torch.zeros(D, D))

    def forward(self, x):
        q, k, v, low, gate = self.inputs(x)
        g = heads(F.logsigmoid(F.linear(low, self.w_decay))) * torch.exp(-self.log_temperature).view(-1, 1, 1)
        o = decay_attn_chunked(heads(q), heads(k), heads(v), g, self.chunk)
        return F.linear(merge(rms_norm(o, self.o_gain) * F.silu(heads(gate))), self.w_out)


class GatedDeltaNet(nn.Module):
    """lang/baselines/gated_deltanet.arch: DeltaNet's q, k (L2-normalised) and v of width 2D after
    short_conv and SiLU, beta = sigmoid, log decay -scale * softplus(linear(x)) per head, the gated
    delta rule, RMSNorm gated by silu(linear(x)), output linear."""

    EXPORTED = {"inputs.weight": ["q_proj.weight", "k_proj.weight", "v_proj.weight", "beta_proj.weight", "decay_proj.weight",
                                  "gate_proj.weight"],
                "inputs.taps": ["q_conv.taps", "k_conv.taps", "v_conv.taps"], "decay_scale": ["decay_scaled.weight"],
                "o_gain": ["o_norm.gain"], "w_out": ["y.weight"]}

    def __init__(self, chunk):
        super().__init__()
        self.chunk = chunk
        self.inputs = Projections([D, D, 2 * D, HEADS, HEADS, 2 * D], 4 * D, F.silu)  # q, k, v (convolved), beta, decay, gate
        self.decay_scale = nn.Parameter(torch.ones(HEADS))
        self.o_gain = nn.Parameter(torch.ones(2 * D // HEADS))
        self.w_out = nn.Parameter(torch.zeros(D, 2 * D))

    def forward(self, x):
        q, k, v, beta, decay, gate = self.inputs(x)
        q, k, v = (heads(a) for a in (q, k, v))
        g = -(F.softplus(decay) * self.decay_scale).transpose(1, 2)
        o = gated_delta_chunked(l2_norm(q), l2_norm(k), v, torch.sigmoid(beta).transpose(1, 2), g, self.chunk)
        return F.linear(merge(rms_norm(o, self.o_gain) * F.silu(heads(gate))), self.w_out)


class Mamba2(nn.Module):
    """lang/baselines/mamba2.arch: u (width 2D), B and C (width D/4, shared by the heads) after
    short_conv and SiLU, dt = softplus(linear(x)), log decay -scale * dt, SSD (decay_attn with one
    decay per head) of dt u, skip D u, gate silu(z), RMSNorm over 2D, output linear."""

    EXPORTED = {"inputs.weight": ["u_proj.weight", "b_proj.weight", "c_proj.weight", "dt_proj.weight", "z.weight"],
                "inputs.taps": ["u_conv.taps", "b_conv.taps", "c_conv.taps"], "a_scale": ["dt_a.weight"], "skip": ["u_skip.weight"],
                "o_gain": ["o_norm.gain"], "w_out": ["y.weight"]}

    def __init__(self, chunk):
        super().__init__()
        self.chunk = chunk
        self.inputs = Projections([2 * D, D // 4, D // 4, HEADS, 2 * D], 2 * D + D // 2, F.silu)  # u, B, C (convolved), dt, z
        self.a_scale = nn.Parameter(torch.ones(HEADS))
        self.skip = nn.Parameter(torch.ones(HEADS))
        self.o_gain = nn.Parameter(torch.ones(2 * D))
        self.w_out = nn.Parameter(torch.zeros(D, 2 * D))

    def forward(self, x):
        u, b, c, dt, z = self.inputs(x)
        u = heads(u)
        b, c = (a.unsqueeze(1).expand(-1, HEADS, -1, -1) for a in (b, c))
        dt = F.softplus(dt).transpose(1, 2)
        o = decay_attn_chunked(c, b, u * dt.unsqueeze(-1), -(dt * self.a_scale.view(-1, 1)), self.chunk)
        o = merge(o + u * self.skip.view(-1, 1, 1))
        return F.linear(rms_norm(o * F.silu(z), self.o_gain), self.w_out)


class RetNet(nn.Module):
    """lang/baselines/retnet.arch: q, k = short_conv(linear(x)), v = linear(x) of width 2D, fixed
    decays log(1 - 2^(-5-h)) per head, retention, RMSNorm gated by silu(linear(x)), output linear."""

    EXPORTED = {"inputs.weight": ["q_proj.weight", "k_proj.weight", "v_proj.weight", "gate_proj.weight"],
                "inputs.taps": ["q_conv.taps", "k_conv.taps"], "o_gain": ["o_norm.gain"], "w_out": ["y.weight"]}

    def __init__(self, chunk):
        super().__init__()
        self.chunk = chunk
        self.inputs = Projections([D, D, 2 * D, 2 * D], 2 * D)  # q, k (convolved), v, gate
        self.log_decay = torch.tensor([math.log1p(-2.0 ** (-5 - h)) for h in range(HEADS)])
        self.o_gain = nn.Parameter(torch.ones(2 * D // HEADS))
        self.w_out = nn.Parameter(torch.zeros(D, 2 * D))

    def forward(self, x):
        q, k, v, gate = self.inputs(x)
        g = self.log_decay.view(1, -1, 1).expand(x.size(0), -1, x.size(1))
        o = decay_attn_chunked(heads(q), heads(k), heads(v), g, self.chunk)
        return F.linear(merge(rms_norm(o, self.o_gain) * F.silu(heads(gate))), self.w_out)


class LinearAttention(nn.Module):
    """lang/baselines/linear_attention.arch: q, k = elu(short_conv(linear(x))) + 1, v = linear(x),
    causal linear attention, per-head RMSNorm, output linear."""

    EXPORTED = {"inputs.weight": ["q_proj.weight", "k_proj.weight", "v_proj.weight"], "inputs.taps": ["q_conv.taps", "k_conv.taps"],
                "o_gain": ["o_norm.gain"], "w_out": ["y.weight"]}

    def __init__(self, chunk):
        super().__init__()
        self.chunk = chunk
        self.inputs = Projections([D, D, D], 2 * D, lambda a: F.elu(a) + 1)  # q, k (convolved), v
        self.o_gain = nn.Parameter(torch.ones(D // HEADS))
        self.w_out = nn.Parameter(torch.zeros(D, D))

    def forward(self, x):
        q, k, v = self.inputs(x)
        o = decay_attn_chunked(heads(q), heads(k), heads(v), None, self.chunk)
        return F.linear(merge(rms_norm(o, self.o_gain)), self.w_out)


class DeltaNet(nn.Module):
    """lang/baselines/deltanet.arch: q, k, v = silu(short_conv(linear(x))) per head, q and k L2
    normalised, beta = sigmoid(linear(x)) per head, delta rule, per-head RMSNorm, output linear."""

    EXPORTED = {"inputs.weight": ["q_proj.weight", "k_proj.weight", "v_proj.weight", "beta_proj.weight"],
                "inputs.taps": ["q_conv.taps", "k_conv.taps", "v_conv.taps"], "o_gain": ["o_norm.gain"], "w_out": ["y.weight"]}

    def __init__(self, chunk):
        super().__init__()
        self.chunk = chunk
        self.inputs = Projections([D, D, D, HEADS], 3 * D, F.silu)  # q, k, v (convolved), beta
        self.o_gain = nn.Parameter(torch.ones(D // HEADS))
        self.w_out = nn.Parameter(torch.zeros(D, D))  # asiarch starts residual branches at zero

    def forward(self, x):
        q, k, v, beta = self.inputs(x)
        q, k, v = (heads(a) for a in (q, k, v))
        o = delta_rule_chunked(l2_norm(q), l2_norm(k), v, torch.sigmoid(beta).transpose(1, 2), self.chunk)
        return F.linear(merge(rms_norm(o, self.o_gain)), self.w_out)


class SoftmaxAttention(nn.Module):
    """lang/baselines/softmax_attention.arch: q and k = short_conv(linear(x)), v = linear(x),
    causal softmax attention with scores q.k / sqrt(dk), output linear."""

    EXPORTED = {"inputs.weight": ["q_proj.weight", "k_proj.weight", "v_proj.weight"], "inputs.taps": ["q_conv.taps", "k_conv.taps"],
                "w_out": ["y.weight"]}

    def __init__(self, chunk=None):
        super().__init__()
        self.inputs = Projections([D, D, D], 2 * D)  # q, k (convolved), v
        self.w_out = nn.Parameter(torch.zeros(D, D))

    def forward(self, x):
        q, k, v = (heads(a) for a in self.inputs(x))
        scores = q @ k.transpose(-1, -2) / math.sqrt(D // HEADS)
        future = torch.ones(x.size(1), x.size(1), dtype=torch.bool).triu(1)
        o = torch.softmax(scores.masked_fill(future, float("-inf")), -1) @ v
        return F.linear(merge(o), self.w_out)


class Block(nn.Module):
    EXPORTED = {"mixer_gain": ["mixer_gain"], "mlp_gain": ["mlp_gain"], "w_gate_up": ["mlp_gate", "mlp_up"], "w_down": ["mlp_down"]}

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
    EXPORTED = {"embedding": ["embedding"], "final_gain": ["final_gain"]}

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


# Chunk sizes measured best for each model (2026-12-07, 2-core EPYC, tokens per CPU second over
# chunks of 16, 32 and 64): GLA's per-key decay table grows with the chunk's square.
BEST_CHUNK = {"gla": 16}
MODELS = {"deltanet": DeltaNet, "gated_deltanet": GatedDeltaNet, "gla": GLA, "linear_attention": LinearAttention,
          "mamba2": Mamba2, "retnet": RetNet, "softmax_attention": SoftmaxAttention}


def load_corpus():
    """GCIDE (asiarch's corpus) when installed, else random bytes: the same throughput either way."""
    if os.path.exists(CORPUS):
        with gzip.open(CORPUS, "rb") as f:
            return torch.frombuffer(bytearray(f.read()), dtype=torch.uint8), CORPUS
    return torch.randint(0, 256, (1 << 20,), dtype=torch.uint8), "random bytes (no GCIDE)"


def train(name, corpus, steps, warmup_steps, repeats, chunk, after_window=lambda: None):
    """The peer's best tokens per second over `repeats` windows of `steps` steps; after_window()
    runs after each window, outside the timing."""
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
        after_window()
    return {"model": name, "params": params, "tokens_per_second": max(rates), "all_tokens_per_second": rates,
            "cpu_tokens_per_second": max(cpu_rates), "final_loss": loss, "chunk": None if name == "softmax_attention" else chunk}


def check():
    """Every chunkwise form against its token loop in float64, values and gradients, at a length
    that is not a multiple of the chunk size."""
    torch.manual_seed(0)
    B, H, T = 2, 4, 100  # T: not a multiple of 32 or 64
    q, k, v = (torch.randn(B, H, T, 16, dtype=torch.float64) for _ in range(3))
    beta = torch.rand(B, H, T, dtype=torch.float64)
    g_head = -torch.rand(B, H, T, dtype=torch.float64)
    g_key = -torch.rand(B, H, T, 16, dtype=torch.float64)
    forms = [("delta rule", delta_rule_loop, delta_rule_chunked, [l2_norm(q), l2_norm(k), v, beta]),
             ("gated delta rule", delta_rule_loop, gated_delta_chunked, [l2_norm(q), l2_norm(k), v, beta, g_head]),
             ("linear attention", lambda *x: decay_attn_loop(*x, None), lambda *x: decay_attn_chunked(*x[:3], None, x[3]), [q, k, v]),
             ("decay per head", decay_attn_loop, decay_attn_chunked, [q, k, v, g_head]),
             ("decay per key", decay_attn_loop, decay_attn_chunked, [q, k, v, g_key])]
    ok = True
    for name, loop, chunked, values in forms:
        inputs = [x.clone().requires_grad_() for x in values]
        ref = loop(*inputs)
        target = torch.randn_like(ref)
        ref_grads = torch.autograd.grad((ref * target).sum(), inputs)
        for chunk in (32, 64):
            out = chunked(*inputs, chunk)
            grads = torch.autograd.grad((out * target).sum(), inputs)
            value_diff = (out - ref).abs().max().item()
            grad_diff = max((g - r).abs().max().item() for g, r in zip(grads, ref_grads))
            passed = value_diff < 1e-10 and grad_diff < 1e-10
            ok = ok and passed
            print("check %-16s chunk %d, T=%d: max |out diff| %.2e, max |grad diff| %.2e: %s"
                  % (name, chunk, T, value_diff, grad_diff, "ok" if passed else "FAILED"))
    return ok


def run_asiarch(command):
    """asiarch's standard output for `command` (its binary first); stops the script when it fails."""
    run = subprocess.run(command, capture_output=True, text=True)
    if run.returncode != 0:
        raise SystemExit("%s failed: %s" % (" ".join(command), run.stderr.strip()[-300:]))
    return run.stdout


def asiarch_training_seconds(asiarch, name, steps):
    """The seconds of training (as `asiarch train --json` reports them) of `steps` LM steps of a baseline."""
    output = run_asiarch([asiarch, "train", name, "--task", "lm", "--steps", str(steps), "--json"])
    return steps * BATCH * SEQ / json.loads(output.strip().splitlines()[-1])["tokens_per_second"]


def asiarch_tokens_per_second(asiarch, name, warmup_steps, steps):
    """asiarch's throughput for a baseline in one window, measured as the peer's windows are:
    `steps` steps after `warmup_steps` of warm-up, from the difference of two runs (`train` reports
    one figure per run, for all its steps). Also the figure of the longer run over all its steps,
    the first ones included."""
    short = asiarch_training_seconds(asiarch, name, warmup_steps)
    long = asiarch_training_seconds(asiarch, name, warmup_steps + steps)
    return steps * BATCH * SEQ / (long - short), (warmup_steps + steps) * BATCH * SEQ / long


def exported_name(name, mixer_class):
    """The name in `asiarch export`'s module of each piece of the peer's parameter `name`."""
    parts = name.split(".")
    if parts[0] != "blocks":
        return LanguageModel.EXPORTED[name]
    block = "block%s." % parts[1]
    if parts[2] == "mixer":
        return [block + "mixer." + piece for piece in mixer_class.EXPORTED[".".join(parts[3:])]]
    return [block + piece for piece in Block.EXPORTED[".".join(parts[2:])]]


def check_against_asiarch(asiarch):
    """Each model, given the weights asiarch's `train` wrote, computes the logits of asiarch's
    exported module (float64, to 1e-12), and so has its parameter count and operators."""
    import importlib.util
    import tempfile

    ok = True
    torch.manual_seed(2)
    tokens = torch.randint(0, VOCAB, (2, SEQ))
    with tempfile.TemporaryDirectory() as directory:
        for name, mixer_class in MODELS.items():
            weights, module_file = "%s/%s.safetensors" % (directory, name), "%s/%s.py" % (directory, name)
            run_asiarch([asiarch, "train", name, "--task", "lm", "--steps", "1", "--save-weights", weights])
            run_asiarch([asiarch, "export", weights, "-o", module_file])
            spec = importlib.util.spec_from_file_location(name, module_file)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            exported = module.build_model(torch.float64).load_weights(weights)
            theirs = dict(exported.named_parameters())
            peer = LanguageModel(mixer_class, BEST_CHUNK.get(name, 64)).double()
            with torch.no_grad():
                for parameter_name, parameter in peer.named_parameters():
                    pieces = [theirs.pop(piece) for piece in exported_name(parameter_name, mixer_class)]
                    parameter.copy_(torch.cat(pieces).reshape(parameter.shape))
                reference = exported(tokens)
                error = ((peer(tokens) - reference).abs().max() / reference.abs().max()).item()
            passed = not theirs and error < 1e-12
            ok = ok and passed
            print("check %-17s: logits of asiarch's weights to %.1e, %s: %s" % (
                name, error, "every parameter used" if not theirs else "unused: " + ", ".join(theirs), "ok" if passed else "FAILED"))
    return ok


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("--steps", type=int, default=100, help="timed steps per repeat")
    parser.add_argument("--warmup", type=int, default=10, help="untimed steps first")
    parser.add_argument("--repeats", type=int, default=3, help="timed windows; the best is reported")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--chunk", type=int, help="chunk size of the recurrences (default: 16 for gla, 64 otherwise)")
    parser.add_argument("--check", action="store_true", help="check the chunkwise forms against token loops and exit")
    parser.add_argument("--asiarch", help="after each model, time this asiarch's `train` of it and print the ratio; with --check, "
                                           "compare each model's logits with this asiarch's exported model's instead")
    parser.add_argument("--json", action="store_true", help="one JSON line instead of text")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)
    if args.check:
        ok = check()
        if args.asiarch:
            ok = check_against_asiarch(args.asiarch) and ok
        raise SystemExit(0 if ok else 1)
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
        if name not in MODELS:
            parser.error("no model %r; the models are %s" % (name, ", ".join(MODELS)))
        chunk = args.chunk or BEST_CHUNK.get(name, 64)
        asiarch_windows = []
        time_asiarch = lambda: asiarch_windows.append(asiarch_tokens_per_second(args.asiarch, name, args.warmup, args.steps))
        r = train(name, corpus, args.steps, args.warmup, args.repeats, chunk, time_asiarch if args.asiarch else lambda: None)
        results.append(r)
        if not args.json:
            print("%-18s %7d params  %8.0f tokens/s (per CPU second %.0f; best of %d x %d steps; chunk %s)"
                  % (name, r["params"], r["tokens_per_second"], r["cpu_tokens_per_second"], args.repeats, args.steps, r["chunk"]))
        if args.asiarch:
            after_warmup, all_steps = (max(window[i] for window in asiarch_windows) for i in (0, 1))
            r["asiarch_tokens_per_second"], r["asiarch_all_steps_tokens_per_second"] = after_warmup, all_steps
            r["asiarch_all_windows"] = [window[0] for window in asiarch_windows]
            if not args.json:
                print("%-18s asiarch %8.0f tokens/s (best of %d x %d steps after %d of warm-up), %.2fx the peer; over all %d steps %.0f, %.2fx"
                      % ("", after_warmup, args.repeats, args.steps, args.warmup, after_warmup / r["tokens_per_second"],
                         args.warmup + args.steps, all_steps, all_steps / r["tokens_per_second"]))
    if args.json:
        print(json.dumps({"env": env, "results": results}))


if __name__ == "__main__":
    main()
