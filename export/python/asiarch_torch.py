# ---- asiarch PyTorch runtime: every operator of the architecture language (lang/LANGUAGE.md)
# in plain PyTorch, the fixed model around the mixer (training/model.cpp) and a reader of the
# safetensors files asiarch writes. Recurrences are plain loops over time: slow, but every line
# is one formula of LANGUAGE.md. Shapes: seq [B, T, n], heads [B, h, T, d], scalars [B, h, T].
import json
import math
import struct

import torch
import torch.nn as nn
import torch.nn.functional as F

NORM_EPSILON = 1e-6
GUARD_FLOOR = 1e-12  # log, sqrt and entropy read max(a, GUARD_FLOOR)


class Weights(nn.Module):
    """The parameters of one statement (or of the model), registered under their asiarch names."""

    def __init__(self, **tensors):
        super().__init__()
        for name, tensor in tensors.items():
            self.register_parameter(name, nn.Parameter(tensor))


# ---- parameter initialisation (the distributions of training/model.cpp) ----

def init_projection(out_features, in_features):
    """Xavier normal (Glorot and Bengio, 2010)."""
    return torch.randn(out_features, in_features) * math.sqrt(2.0 / (in_features + out_features))


def init_conv_taps(channels, taps):
    """PyTorch's Conv1d default for a depthwise kernel, U(-1/sqrt(K), 1/sqrt(K))."""
    bound = 1.0 / math.sqrt(taps)
    return (torch.rand(channels, taps) * 2.0 - 1.0) * bound


def init_fir_taps(channels, taps, dirac, noise):
    """A causal FIR filter's taps: N(0, noise^2), plus `dirac` on the last tap (the current
    token). dirac=1.0, noise=0.0 is the identity."""
    weight = torch.randn(channels, taps) * noise
    weight[:, -1] += dirac
    return weight


def per_head(parameter, kind):
    """A per-channel (seq) or per-head (heads, scalars) parameter shaped to broadcast."""
    if kind == "heads":
        return parameter.view(-1, 1, 1)
    if kind == "scalars":
        return parameter.view(-1, 1)
    return parameter


# ---- projections and reshapes ----

def op_linear(a, weight):
    return F.linear(a, weight)


def op_split_heads(a, heads):
    return a.view(a.size(0), a.size(1), heads, a.size(2) // heads).transpose(1, 2)


def op_merge_heads(a):
    return a.transpose(1, 2).reshape(a.size(0), a.size(2), a.size(1) * a.size(3))


def op_head_scalars(a):
    return a.transpose(1, 2)


def op_concat(a, b):
    return torch.cat([a, b], -1)


# ---- elementwise ----

op_silu = F.silu
op_sigmoid = torch.sigmoid
op_softplus = F.softplus
op_logsigmoid = F.logsigmoid
op_relu = torch.relu
op_exp = torch.exp
op_tanh = torch.tanh
op_neg = torch.neg


def op_elu1(a):
    return F.elu(a) + 1.0


def op_gelu(a):
    """The exact GELU, a * Phi(a), by its formula as asiarch computes it."""
    return 0.5 * a * (1.0 + torch.erf(a * math.sqrt(0.5)))


op_abs = torch.abs


def op_log(a):
    return torch.log(torch.clamp_min(a, GUARD_FLOOR))


def op_sqrt(a):
    return torch.sqrt(torch.clamp_min(a, GUARD_FLOOR))


def broadcast_pair(a, b):
    """heads [B, h, T, d] with scalars [B, h, T], in either order: the scalars gain a last axis.
    A number (a Python float) becomes a 0-dimensional tensor of the other operand's type;
    seq [B, T, 1] broadcasts over seq [B, T, n] as it is."""
    if isinstance(a, float):
        return torch.tensor(a, dtype=b.dtype, device=b.device), b
    if isinstance(b, float):
        return a, torch.tensor(b, dtype=a.dtype, device=a.device)
    if a.dim() == 4 and b.dim() == 3:
        return a, b.unsqueeze(-1)
    if a.dim() == 3 and b.dim() == 4:
        return a.unsqueeze(-1), b
    return a, b


def op_add(a, b):
    a, b = broadcast_pair(a, b)
    return a + b


def op_sub(a, b):
    a, b = broadcast_pair(a, b)
    return a - b


def op_mul(a, b):
    a, b = broadcast_pair(a, b)
    return a * b


def op_div(a, b, eps):
    a, b = broadcast_pair(a, b)
    return a / torch.clamp_min(b, eps)


def op_max(a, b):
    a, b = broadcast_pair(a, b)
    return torch.maximum(a, b)


def op_min(a, b):
    a, b = broadcast_pair(a, b)
    return torch.minimum(a, b)


def op_scale(a, weight, kind):
    return a * per_head(weight, kind)


def op_temperature(a, log_temperature, kind):
    return a * per_head(torch.exp(-log_temperature), kind)


def op_sharpen(a, raw_scale, kind):
    return a * per_head(F.softplus(raw_scale), kind)


def op_bias(a, bias, kind):
    return a + (bias.view(-1, 1) if kind == "scalars" else bias)


# ---- reductions: over the last dimension (seq [B, T, n] -> [B, T, 1], heads -> scalars), or
# over the heads, given back to every head ----

def op_reduce_sum(a, kind):
    return a.sum(-1, keepdim=kind == "seq")


def op_reduce_mean(a, kind):
    return a.mean(-1, keepdim=kind == "seq")


def op_reduce_max(a, kind):
    return a.amax(-1, keepdim=kind == "seq")


def op_entropy(p, kind):
    return -(p * torch.log(torch.clamp_min(p, GUARD_FLOOR))).sum(-1, keepdim=kind == "seq")


def op_heads_mean(a):
    return a.mean(1, keepdim=True).expand_as(a)


def op_heads_std(a):
    return torch.sqrt(a.var(1, unbiased=False, keepdim=True) + NORM_EPSILON).expand_as(a)


# ---- normalisation ----

def rms_norm(a, gain):
    return a * torch.rsqrt(a.square().mean(-1, keepdim=True) + NORM_EPSILON) * gain


def op_l2norm(a):
    return a * torch.rsqrt(a.square().sum(-1, keepdim=True) + NORM_EPSILON)


def op_softmax(a):
    return torch.softmax(a, -1)


def op_rmsnorm(a, gain):
    return rms_norm(a, gain)


def op_gated_rmsnorm(a, g, gain):
    return rms_norm(a, gain) * F.silu(g)


# ---- local mixing ----

def depthwise_conv(a, taps, before, after):
    """Output t reads inputs t - before ... t + after of a [B, T, n] value; taps [n, K]."""
    length = a.size(1)
    padded = F.pad(a, (0, 0, before, after))
    out = padded[:, 0:length] * taps[:, 0]
    for j in range(1, taps.size(1)):
        out = out + padded[:, j:j + length] * taps[:, j]
    return out


def op_short_conv(a, taps):
    return depthwise_conv(a, taps, taps.size(1) - 1, 0)


def op_noncausal_conv(a, taps):
    after = taps.size(1) // 2
    return depthwise_conv(a, taps, taps.size(1) - 1 - after, after)


def op_fir(a, taps, kind):
    """Causal depthwise FIR filter; for heads the channels are head-major (h*d of them)."""
    if kind == "seq":
        return op_short_conv(a, taps)
    batch, heads, length, width = a.shape
    by_token = a.transpose(1, 2).reshape(batch, length, heads * width)
    return op_short_conv(by_token, taps).view(batch, length, heads, width).transpose(1, 2)


def op_seq_mean(a, kind):
    time = 1 if kind == "seq" else 2
    return a.mean(time, keepdim=True).expand_as(a)


# ---- recurrences: token by token, the state S a [B, H, dk, dv] tensor ----

def gated_delta_loop(q, k, v, beta, g):
    """S_t = exp(g_t) S_{t-1} - beta_t k_t (exp(g_t) k_t^T S_{t-1} - v_t^T); o_t = S_t^T q_t."""
    state = q.new_zeros(q.size(0), q.size(1), q.size(3), v.size(3))
    outputs = []
    for t in range(q.size(2)):
        k_t = k[:, :, t]
        decayed = state if g is None else state * torch.exp(g[:, :, t].to(q.dtype))[..., None, None]
        error = (decayed * k_t[..., None]).sum(-2) - v[:, :, t]
        state = decayed - beta[:, :, t].to(q.dtype)[..., None, None] * (k_t[..., None] * error[..., None, :])
        outputs.append((state * q[:, :, t][..., None]).sum(-2))
    return torch.stack(outputs, 2)


def op_linear_attn(q, k, v):
    return op_decay_attn(q, k, v, None)


def op_decay_attn(q, k, v, g):
    """S_t = diag(exp g_t) S_{t-1} + k_t v_t^T with g [B,H,T] (scalar) or [B,H,T,dk] (vector)."""
    state = q.new_zeros(q.size(0), q.size(1), q.size(3), v.size(3))
    outputs = []
    for t in range(q.size(2)):
        if g is not None:
            decay = torch.exp(g[:, :, t].to(q.dtype))
            state = state * (decay[..., None] if g.dim() == 4 else decay[..., None, None])
        state = state + k[:, :, t][..., None] * v[:, :, t][..., None, :]
        outputs.append((state * q[:, :, t][..., None]).sum(-2))
    return torch.stack(outputs, 2)


def op_delta_rule(q, k, v, beta):
    return gated_delta_loop(q, k, v, beta, None)


def op_gated_delta_rule(q, k, v, beta, g):
    return gated_delta_loop(q, k, v, beta, g)


def windowed_softmax_attention(q, k, v, window):
    """Causal softmax attention over the last `window` tokens (all of them if None)."""
    scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(q.size(3))
    positions = torch.arange(q.size(2), device=q.device)
    offset = positions[:, None] - positions[None, :]
    hidden = offset < 0
    if window is not None:
        hidden = hidden | (offset >= window)
    return torch.matmul(torch.softmax(scores.masked_fill(hidden, float("-inf")), -1), v)


def op_swa(q, k, v, window):
    return windowed_softmax_attention(q, k, v, window)


def op_softmax_attn(q, k, v):
    return windowed_softmax_attention(q, k, v, None)


def op_retnet_decay(a, heads):
    """RetNet's fixed log decays log(1 - 2^(-5-i)) (Sun et al., 2023), kept in float32 as asiarch does."""
    table = torch.tensor([math.log1p(-2.0 ** (-5 - i)) for i in range(heads)], dtype=torch.float32, device=a.device)
    return table.view(1, -1, 1).expand(a.size(0), -1, a.size(1))


# ---- routing ----

def op_gated_fuse(a, b, g):
    gate = torch.sigmoid(g)
    return gate * a + (1.0 - gate) * b


def route_weight(weight, kind):
    """A route weight [B, T] shaped to scale a path of the given kind."""
    if kind == "seq":
        return weight.unsqueeze(-1)
    if kind == "heads":
        return weight.unsqueeze(1).unsqueeze(-1)
    return weight.unsqueeze(1)


def op_route(logits, paths, temp, kind):
    weights = torch.softmax(logits / temp, -1)
    out = paths[0] * route_weight(weights[..., 0], kind)
    for i in range(1, len(paths)):
        out = out + paths[i] * route_weight(weights[..., i], kind)
    return out


def op_path_stats(paths, kind):
    channels = {"seq": (2,), "heads": (1, 3), "scalars": (1,)}[kind]
    stats = []
    for path in paths:
        variance, mean = torch.var_mean(path, dim=channels, unbiased=False)
        stats += [mean, torch.sqrt(variance + NORM_EPSILON)]
    return torch.stack(stats, -1)


def op_head_mean_abs(paths):
    return torch.cat([path.abs().mean(-1).transpose(1, 2) for path in paths], -1)


def op_head_mean_std(paths):
    stats = []
    for path in paths:
        variance, mean = torch.var_mean(path, dim=-1, unbiased=False)
        stats += [mean.transpose(1, 2), torch.sqrt(variance + NORM_EPSILON).transpose(1, 2)]
    return torch.cat(stats, -1)


def weighted_paths(weights, paths):
    """sum_p weights[..., p] * paths[p] for weights [B, h, T, k] and paths [B, h, T, d], or
    weights [B, T, k] and paths [B, T, n]."""
    out = paths[0] * weights[..., 0:1]
    for i in range(1, len(paths)):
        out = out + paths[i] * weights[..., i:i + 1]
    return out


def op_sigmoid_fuse(g, paths, floor):
    return weighted_paths(floor + (1.0 - floor) * torch.sigmoid(g), paths)


def op_head_route(g, paths):
    return weighted_paths(torch.softmax(g, -1), paths)


def op_weighted_paths(weights, paths):
    if weights.dim() < paths[0].dim():
        weights = weights.unsqueeze(1)  # seq[k] weights over heads paths: shared by the heads
    return weighted_paths(weights, paths)


# ---- auxiliary losses ----

def op_penalty(a, p, weight, losses):
    """a, unchanged; weight * mean(p) joins the mixer's auxiliary loss, which training adds."""
    losses.append(weight * p.mean())
    return a


# ---- the fixed model around the mixer (training/model.cpp) ----

def mlp_hidden_width(d_model):
    """SwiGLU's hidden width: about 8/3 D, a multiple of 8."""
    return (8 * d_model // 3 + 7) // 8 * 8


class Block(nn.Module):
    """Pre-RMSNorm mixer + residual, pre-RMSNorm SwiGLU MLP + residual."""

    def __init__(self, mixer, d_model):
        super().__init__()
        hidden = mlp_hidden_width(d_model)
        self.mixer_gain = nn.Parameter(torch.ones(d_model))
        self.mixer = mixer
        self.mlp_gain = nn.Parameter(torch.ones(d_model))
        self.mlp_gate = nn.Parameter(init_projection(hidden, d_model))
        self.mlp_up = nn.Parameter(init_projection(hidden, d_model))
        self.mlp_down = nn.Parameter(init_projection(d_model, hidden))

    def forward(self, h):
        h = h + self.mixer(rms_norm(h, self.mixer_gain))
        normed = rms_norm(h, self.mlp_gain)
        return h + F.linear(F.silu(F.linear(normed, self.mlp_gate)) * F.linear(normed, self.mlp_up), self.mlp_down)


class LanguageModel(nn.Module):
    """Token embedding, `layers` blocks, a final RMSNorm and the output head tied to the embedding."""

    def __init__(self, make_mixer, vocab, d_model, layers):
        super().__init__()
        self.embedding = nn.Parameter(torch.randn(vocab, d_model) * 0.02)
        for i in range(layers):
            self.add_module("block%d" % i, Block(make_mixer(), d_model))
        self.final_gain = nn.Parameter(torch.ones(d_model))
        self.layers = layers

    def forward(self, tokens):
        """tokens [B, T] int64 -> logits [B, T, vocab]."""
        h = F.embedding(tokens, self.embedding)
        for i in range(self.layers):
            h = self._modules["block%d" % i](h)
        return F.linear(rms_norm(h, self.final_gain), self.embedding)

    def auxiliary_loss(self):
        """The mixers' penalty terms in the last forward, summed over blocks (None without any):
        asiarch minimises the cross-entropy plus this."""
        terms = [self._modules["block%d" % i].mixer.auxiliary_loss for i in range(self.layers)
                 if hasattr(self._modules["block%d" % i].mixer, "auxiliary_loss")]
        return sum(terms) if terms else None

    def load_weights(self, path):
        """Loads a safetensors file asiarch wrote (every parameter, by name); returns self."""
        tensors = read_safetensors(path)
        own = dict(self.named_parameters())
        missing = sorted(set(own) - set(tensors))
        unexpected = sorted(set(tensors) - set(own))
        if missing or unexpected:
            raise ValueError("%s does not fit this model: missing %s, unexpected %s" % (path, missing, unexpected))
        with torch.no_grad():
            for name, parameter in own.items():
                if tuple(tensors[name].shape) != tuple(parameter.shape):
                    raise ValueError("%s: %s has shape %s, the model's is %s" % (path, name, list(tensors[name].shape), list(parameter.shape)))
                parameter.copy_(tensors[name].to(parameter.dtype))
        return self


# ---- safetensors (https://github.com/huggingface/safetensors): an 8-byte little-endian header
# length, a JSON header of name -> {dtype, shape, data_offsets}, then the raw little-endian data.

SAFETENSORS_DTYPES = {"F32": torch.float32, "F64": torch.float64, "I64": torch.int64}


def read_safetensors(path):
    """name -> tensor for every tensor of a safetensors file (F32, F64 or I64)."""
    with open(path, "rb") as f:
        data = f.read()
    (header_size,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + header_size].decode("utf-8"))
    body = data[8 + header_size:]
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        if entry["dtype"] not in SAFETENSORS_DTYPES:
            raise ValueError("%s: tensor %s has dtype %s; this reader knows %s" % (path, name, entry["dtype"], sorted(SAFETENSORS_DTYPES)))
        begin, end = entry["data_offsets"]
        flat = torch.frombuffer(bytearray(body[begin:end]), dtype=SAFETENSORS_DTYPES[entry["dtype"]])
        tensors[name] = flat.reshape(entry["shape"])
    return tensors


def read_safetensors_metadata(path):
    """The string -> string __metadata__ of a safetensors file."""
    with open(path, "rb") as f:
        (header_size,) = struct.unpack("<Q", f.read(8))
        return json.loads(f.read(header_size).decode("utf-8")).get("__metadata__", {})
