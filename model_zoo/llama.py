"""Llama-style decoder (Touvron et al. 2023, arXiv 2302.13971): RMSNorm, RoPE, SwiGLU, grouped-query attention.

Built for export: one ``step(tokens, start_pos, k_cache, v_cache)`` with static
shapes serves both prefill (T tokens) and decode (T = 1). The KV cache is an
explicit input and output — a (layers, batch, kv_heads, max_seq, head_dim) tensor per
K and V — and is updated with a one-hot matmul instead of an indexed write, so
every target (ExecuTorch, Core ML, TFLite, ONNX) takes the same graph. Positions
past the current one are masked, so the padding of a short prefill chunk never
leaks into attention. RoPE uses the rotate-half layout of Hugging Face's Llama,
so its checkpoints load unchanged (``load_hf_checkpoint``).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from edgekit.errors import EdgekitError

if TYPE_CHECKING:
    from edgekit.spec import ModelSpec


@dataclass(frozen=True)
class LlamaConfig:
    vocab_size: int = 1024
    dim: int = 128
    n_layers: int = 4
    n_heads: int = 4
    n_kv_heads: int = 2
    hidden_dim: int = 384
    max_seq_len: int = 256
    rope_theta: float = 10000.0
    norm_eps: float = 1e-5
    tie_embeddings: bool = False

    def __post_init__(self):
        if self.dim % self.n_heads:
            raise EdgekitError("bad_config", f"dim {self.dim} is not divisible by n_heads {self.n_heads}",
                               fix="choose n_heads dividing dim")
        if self.n_heads % self.n_kv_heads:
            raise EdgekitError("bad_config", f"n_heads {self.n_heads} is not a multiple of n_kv_heads "
                               f"{self.n_kv_heads}", fix="choose n_kv_heads dividing n_heads")

    @property
    def head_dim(self) -> int:
        return self.dim // self.n_heads

    def cache_shape(self, batch: int = 1) -> tuple[int, ...]:
        return (self.n_layers, batch, self.n_kv_heads, self.max_seq_len, self.head_dim)


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps, self.weight = eps, nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return self.weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps))


def rotate_half(x):
    a, b = x.chunk(2, dim=-1)
    return torch.cat((-b, a), dim=-1)


class Attention(nn.Module):
    def __init__(self, cfg: LlamaConfig):
        super().__init__()
        self.cfg = cfg
        hd = cfg.head_dim
        self.q_proj = nn.Linear(cfg.dim, cfg.n_heads * hd, bias=False)
        self.k_proj = nn.Linear(cfg.dim, cfg.n_kv_heads * hd, bias=False)
        self.v_proj = nn.Linear(cfg.dim, cfg.n_kv_heads * hd, bias=False)
        self.o_proj = nn.Linear(cfg.n_heads * hd, cfg.dim, bias=False)

    def forward(self, x, cos, sin, write, mask, k_cache, v_cache):
        """x (1, T, dim); write (T, S) one-hot of the positions written; mask (T, S) additive."""
        q, k, v = self.project(x, cos, sin)
        # Write the T new rows into the cache: keep the old rows, add the new ones at their positions.
        keep = 1.0 - write.sum(0)[:, None]                                  # (S, 1)
        k_cache = k_cache * keep + write.transpose(0, 1) @ k                 # (B, kv, S, hd)
        v_cache = v_cache * keep + write.transpose(0, 1) @ v
        return self.attend(q, k_cache, v_cache, mask), k_cache, v_cache

    def project(self, x, cos, sin):
        """x (B, T, dim) -> rotated q (B, H, T, hd), rotated k and v (B, kv, T, hd)."""
        cfg = self.cfg
        q, k, v = self.qkv(x)
        q, k, v = _heads(q, cfg.n_heads), _heads(k, cfg.n_kv_heads), _heads(v, cfg.n_kv_heads)
        return q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin, v

    def qkv(self, x):
        """The q, k, v projections of x; one op when an exporter fused them (``qkv_proj``: rows of q, k, v)."""
        fused = getattr(self, "qkv_proj", None)  # exporters/llm_fuse.py (edgekit kernels)
        if fused is None:
            return self.q_proj(x), self.k_proj(x), self.v_proj(x)
        hd, kv = self.cfg.head_dim, self.cfg.n_kv_heads
        return fused(x).split((self.cfg.n_heads * hd, kv * hd, kv * hd), dim=-1)

    def attend(self, q, k_cache, v_cache, mask, start_pos=None):
        """Grouped-query attention of q (B, H, T, hd) over the caches (B, kv, S, hd), then o_proj. With
        ``kernel_attention`` (exporters/llm_kernels.py), in-place caches and ``start_pos``: one
        ``edgekit::attention`` op reading only the positions in use (the same math, to fp32 rounding)."""
        cfg, (b, _, t, hd) = self.cfg, q.shape
        kv, s = cfg.n_kv_heads, k_cache.shape[-2]
        rep = cfg.n_heads // kv
        if getattr(self, "kernel_attention", False) and start_pos is not None and k_cache.dim() == 3:
            out = torch.ops.edgekit.attention(q.reshape(kv, rep * t, hd), k_cache, v_cache, start_pos, t)
            return self.o_proj(_merge_heads(out.reshape(b, cfg.n_heads, t, hd)))
        # The rep query heads of a group read the same kv head: fold them into the rows of a 3-D bmm
        # (a 4-D @ exports as expand_copy + bmm: copies of q and the cache). The in-place caches are
        # already (kv, S, hd): a reshape there would be a copy in XNNPACK.
        if k_cache.dim() == 4:
            k_cache, v_cache = k_cache.reshape(b * kv, s, hd), v_cache.reshape(b * kv, s, hd)
        q = q.reshape(b * kv, rep * t, hd)
        att = torch.bmm(q, k_cache.transpose(1, 2)) / math.sqrt(hd) + mask.repeat(rep, 1)
        out = torch.bmm(torch.softmax(att, dim=-1), v_cache)                         # (B*kv, rep*T, hd)
        return self.o_proj(_merge_heads(out.reshape(b, cfg.n_heads, t, hd)))


def _heads(y, n: int):  # (B, T, n*hd) -> (B, n, T, hd); at T = 1 a view, no transpose op
    b, t, d = y.shape
    return y.view(b, n, 1, d // n) if t == 1 else y.view(b, t, n, d // n).transpose(1, 2)


def _merge_heads(y):
    """(B, n, T, hd) -> (B, T, n*hd), the inverse of ``_heads``."""
    b, n, t, hd = y.shape  # at T = 1 a reshape, no transpose op
    return y.reshape(b, 1, n * hd) if t == 1 else y.transpose(1, 2).reshape(b, t, n * hd)


class FeedForward(nn.Module):
    def __init__(self, cfg: LlamaConfig):
        super().__init__()
        self.gate_proj = nn.Linear(cfg.dim, cfg.hidden_dim, bias=False)
        self.up_proj = nn.Linear(cfg.dim, cfg.hidden_dim, bias=False)
        self.down_proj = nn.Linear(cfg.hidden_dim, cfg.dim, bias=False)

    def forward(self, x):
        fused = getattr(self, "gate_up_proj", None)  # exporters/llm_fuse.py: one op, rows of gate then up
        gate, up = (self.gate_proj(x), self.up_proj(x)) if fused is None else fused(x).chunk(2, dim=-1)
        return self.down_proj(F.silu(gate) * up)


class Block(nn.Module):
    def __init__(self, cfg: LlamaConfig):
        super().__init__()
        self.input_layernorm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.self_attn = Attention(cfg)
        self.post_attention_layernorm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.mlp = FeedForward(cfg)

    def forward(self, x, cos, sin, write, mask, k_cache, v_cache):
        h, k_cache, v_cache = self.self_attn(self.input_layernorm(x), cos, sin, write, mask, k_cache, v_cache)
        x = x + h
        return x + self.mlp(self.post_attention_layernorm(x)), k_cache, v_cache


class Llama(nn.Module):
    def __init__(self, cfg: LlamaConfig):
        super().__init__()
        self.cfg = cfg
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.dim)
        self.layers = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.lm_head = nn.Linear(cfg.dim, cfg.vocab_size, bias=False)
        if cfg.tie_embeddings:
            self.lm_head.weight = self.embed_tokens.weight
        inv_freq = 1.0 / cfg.rope_theta ** (torch.arange(0, cfg.head_dim, 2).float() / cfg.head_dim)
        freqs = torch.outer(torch.arange(cfg.max_seq_len).float(), inv_freq)
        emb = torch.cat((freqs, freqs), dim=-1)
        self.register_buffer("rope_cos", emb.cos(), persistent=False)
        self.register_buffer("rope_sin", emb.sin(), persistent=False)
        self.register_buffer("positions", torch.arange(cfg.max_seq_len), persistent=False)
        # Layers listed here are skipped (FiRST, model_zoo/first.py); empty = the full model.
        self.skip: frozenset[int] = frozenset()

    def empty_cache(self, batch: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.zeros(self.cfg.cache_shape(batch)), torch.zeros(self.cfg.cache_shape(batch))

    def step_context(self, start_pos, t: int) -> tuple[torch.Tensor, ...]:
        """What every layer of one step needs: (cos, sin, write, mask) for positions start_pos .. start_pos + t."""
        pos = start_pos + torch.arange(t)                                    # (T,)
        cos, sin = self.rope_cos[pos][None, None], self.rope_sin[pos][None, None]
        write = (pos[:, None] == self.positions[None, :]).float()            # (T, S)
        mask = torch.where(self.positions[None, :] <= pos[:, None], 0.0, float("-inf"))
        return cos, sin, write, mask

    def forward(self, tokens, start_pos, k_cache, v_cache):
        """tokens (B, T) int64; start_pos (1,) int64; caches (layers, B, kv, S, hd) -> logits (B, T, vocab), caches."""
        context = self.step_context(start_pos, tokens.shape[1])
        x, k_cache, v_cache = self.run_blocks(self.embed_tokens(tokens), context, k_cache, v_cache,
                                              route=(lambda i, _x: i not in self.skip) if self.skip else None)
        return self.lm_head(self.norm(x)), k_cache, v_cache

    def run_blocks(self, x, context: tuple, k_cache, v_cache, route=None):
        """The decoder's layer loop (explicit cache): (x, k_cache, v_cache) after every block.

        ``route(i, x)`` decides layer i from its input: True runs the block, False skips it (x and the
        layer's cache pass through untouched, as FiRST does), a function ``mix(x, y)`` runs it and
        combines its input and output (FiRST's router training). None: run every block.
        """
        new_k, new_v = [], []
        for i, layer in enumerate(self.layers):
            decision = True if route is None else route(i, x)
            if decision is False:
                new_k.append(k_cache[i])
                new_v.append(v_cache[i])
                continue
            y, k, v = layer(x, *context, k_cache[i], v_cache[i])
            x = y if decision is True else decision(x, y)
            new_k.append(k)
            new_v.append(v)
        return x, torch.stack(new_k), torch.stack(new_v)

    def logits_full(self, tokens):
        """Reference: the whole sequence at once, no cache (for tests and training)."""
        k, v = self.empty_cache(tokens.shape[0])
        logits, _, _ = self(tokens, torch.zeros(1, dtype=torch.long), k, v)
        return logits


class LlamaStep(nn.Module):
    """A method view of the model for export: prefill (T = chunk) or decode (T = 1)."""

    def __init__(self, model: Llama):
        super().__init__()
        self.model = model

    def forward(self, tokens, start_pos, k_cache, v_cache):
        return self.model(tokens, start_pos, k_cache, v_cache)


class LlamaInPlaceStep(nn.Module):
    """Export view with the KV cache inside: per-layer buffers written in place.

    ``forward(tokens, start_pos) -> logits`` writes the T new rows of each layer's cache
    at their positions (index_copy_) instead of taking the whole cache in and handing a
    new one back, so a decode step touches T rows, not layers x S rows. ExecuTorch
    methods exported from it share the buffers (prefill fills what decode reads).
    With ``reset=True`` the module instead zeroes the caches (a new conversation, and
    the first call after loading: the runtime does not promise zeroed memory).
    """

    def __init__(self, model: Llama, reset: bool = False):
        super().__init__()
        self.model, self.is_reset = model, reset
        shape = model.cfg.cache_shape(1)[2:]  # (kv, S, hd): batch 1, as attend's bmm reads it (no reshape)
        for i in range(model.cfg.n_layers):
            self.register_buffer(f"k_cache_{i}", torch.zeros(shape))
            self.register_buffer(f"v_cache_{i}", torch.zeros(shape))

    def forward(self, tokens, start_pos=None):
        m = self.model
        if self.is_reset:
            for name, buf in self.named_buffers(recurse=False):
                buf.zero_()
            return tokens + 0
        pos = start_pos + torch.arange(tokens.shape[1])
        cos, sin = m.rope_cos[pos][None, None], m.rope_sin[pos][None, None]
        mask = torch.where(m.positions[None, :] <= pos[:, None], 0.0, float("-inf"))
        x = m.embed_tokens(tokens)
        for i, layer in enumerate(m.layers):
            if i in m.skip:
                continue
            attn = layer.self_attn
            q, k, v = attn.project(layer.input_layernorm(x), cos, sin)
            k_cache, v_cache = getattr(self, f"k_cache_{i}"), getattr(self, f"v_cache_{i}")
            k_cache.index_copy_(1, pos, k[0])
            v_cache.index_copy_(1, pos, v[0])
            x = x + attn.attend(q, k_cache, v_cache, mask, start_pos)
            x = x + layer.mlp(layer.post_attention_layernorm(x))
        return m.lm_head(m.norm(x))


def hf_config(cfg: LlamaConfig) -> dict:
    return {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": cfg.vocab_size,
            "hidden_size": cfg.dim, "intermediate_size": cfg.hidden_dim, "num_hidden_layers": cfg.n_layers,
            "num_attention_heads": cfg.n_heads, "num_key_value_heads": cfg.n_kv_heads,
            "max_position_embeddings": cfg.max_seq_len, "rms_norm_eps": cfg.norm_eps, "rope_theta": cfg.rope_theta,
            "tie_word_embeddings": cfg.tie_embeddings, "hidden_act": "silu", "attention_bias": False,
            "mlp_bias": False, "torch_dtype": "float32"}


def save_hf_checkpoint(model: Llama, directory: str | Path) -> None:
    """config.json + model.safetensors in Hugging Face's Llama layout."""
    from safetensors.torch import save_file

    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    (d / "config.json").write_text(json.dumps(hf_config(model.cfg), indent=2))
    state = {f"model.{k}" if not k.startswith("lm_head") else k: v.contiguous()
             for k, v in model.state_dict().items()}
    if model.cfg.tie_embeddings:
        state.pop("lm_head.weight", None)
    save_file(state, str(d / "model.safetensors"))


CLUSTERED_SUFFIX = ".clustered.safetensors"  # written by edgekit.exporters.llm_compress


def config_from_hf(hf: dict, max_seq_len: int | None = None) -> LlamaConfig:
    """Our config from a Hugging Face Llama config.json."""
    if hf.get("model_type") != "llama":
        raise EdgekitError("unsupported_checkpoint", f"model_type {hf.get('model_type')!r} is not 'llama'",
                           fix="load a Llama-architecture checkpoint")
    return LlamaConfig(
        vocab_size=hf["vocab_size"], dim=hf["hidden_size"], n_layers=hf["num_hidden_layers"],
        n_heads=hf["num_attention_heads"], n_kv_heads=hf.get("num_key_value_heads", hf["num_attention_heads"]),
        hidden_dim=hf["intermediate_size"], max_seq_len=max_seq_len or hf.get("max_position_embeddings", 2048),
        rope_theta=hf.get("rope_theta", 10000.0), norm_eps=hf.get("rms_norm_eps", 1e-6),
        tie_embeddings=hf.get("tie_word_embeddings", False),
    )


def load_hf_checkpoint(directory: str | Path, max_seq_len: int | None = None) -> Llama:
    """Load a Hugging Face Llama checkpoint (config.json + *.safetensors) from a local directory."""
    from safetensors.torch import load_file

    d = Path(directory)
    if not (d / "config.json").is_file():
        raise EdgekitError("not_a_checkpoint", f"{d} has no config.json",
                           fix="pass a directory holding a Hugging Face Llama config.json and *.safetensors")
    cfg = config_from_hf(json.loads((d / "config.json").read_text()), max_seq_len)
    state = {}
    files = sorted(f for f in d.glob("*.safetensors") if not f.name.endswith(CLUSTERED_SUFFIX))
    if not files and any(d.glob(f"*{CLUSTERED_SUFFIX}")):
        raise EdgekitError("clustered_checkpoint", f"{d} holds eDKM-clustered weights (indices + tables)",
                           fix="load it with edgekit.exporters.llm_compress.load_clustered (edgekit export-llm "
                               "does this by itself)")
    if not files:
        raise EdgekitError("not_a_checkpoint", f"{d} has no .safetensors files",
                           fix="save the weights as safetensors (pickle .bin files are refused)")
    for f in files:
        state.update(load_file(str(f)))
    state = {k.removeprefix("model."): v for k, v in state.items()}
    model = Llama(cfg)
    if cfg.tie_embeddings:
        state.setdefault("lm_head.weight", state["embed_tokens.weight"])
    missing, unexpected = model.load_state_dict(state, strict=False)
    unexpected = [k for k in unexpected if "rotary_emb" not in k]
    if missing or unexpected:
        raise EdgekitError("checkpoint_mismatch", f"checkpoint keys do not match: missing {missing[:5]}, "
                           f"unexpected {unexpected[:5]}", fix="check that the checkpoint is a Llama model")
    return model.eval()


def config_dict(cfg: LlamaConfig) -> dict:
    return asdict(cfg)


cfgs = {
    # ~1M parameters: for tests.
    "llama_tiny": LlamaConfig(vocab_size=1024, dim=128, n_layers=4, n_heads=4, n_kv_heads=2, hidden_dim=384,
                              max_seq_len=256),
    # ~2M parameters: trained on pydoc text in benchmarks/llm_train_export.py (val perplexity in docs/llm.md).
    "llama_pydoc": LlamaConfig(vocab_size=1024, dim=192, n_layers=4, n_heads=6, n_kv_heads=2, hidden_dim=512,
                               max_seq_len=256),
    # ~30M parameters: the size class the speed figures in docs/llm.md target.
    "llama_30m": LlamaConfig(vocab_size=4096, dim=512, n_layers=8, n_heads=8, n_kv_heads=4, hidden_dim=1408,
                             max_seq_len=512),
    # ~102M parameters (12 x 7.5M decoder + 2 x 6.3M embeddings / lm_head): the decode benchmark's
    # >= 100M class (benchmarks/kernels_decode.py: random weights clustered by k-means).
    "llama_100m": LlamaConfig(vocab_size=8192, dim=768, n_layers=12, n_heads=12, n_kv_heads=4, hidden_dim=2560,
                              max_seq_len=256),
}


def _build_spec(name: str, **overrides) -> ModelSpec:
    from edgekit.spec import ModelSpec

    cfg = replace(cfgs[name], **overrides)

    def build():
        with torch.random.fork_rng():
            torch.manual_seed(0)
            return Llama(cfg).eval()

    def example_inputs(seed: int = 0):
        shape = cfg.cache_shape(1)
        import numpy as np
        return (np.array([[seed % cfg.vocab_size]], np.int64), np.array([0], np.int64),
                np.zeros(shape, np.float32), np.zeros(shape, np.float32))

    return ModelSpec(name=name, family="llama", task="causal-lm", paper="Touvron et al. 2023, arXiv 2302.13971",
                     build=build, example_inputs=example_inputs,
                     input_names=("tokens", "start_pos", "k_cache", "v_cache"))


from edgekit.model_zoo.registry import register_family  # noqa: E402

register_family(cfgs, _build_spec)
