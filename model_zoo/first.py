"""FiRST: Finetuning Router-Selective Transformers (Jain et al. 2024, arXiv 2410.12513).

Every decoder layer has a router that looks at the prompt once, at prefill, and
decides whether the layer runs for this request. The skip set is then fixed for
the whole generation, so the KV cache stays consistent: a skipped layer writes
no cache rows, neither for the prompt nor for any decoded token. No public code
exists; the design below is ours (docs/llm.md, "FiRST", says why):

- Router of layer l: ``p_l = sigmoid(w_l . rms(mean_t h_{l,t}) + b_l)``, the keep
  probability, from the mean over the prompt tokens of the hidden state entering
  layer l (after the decisions of layers < l). Pooling before scoring makes the
  router one dot product per layer and per request; ``rms`` (no weight) makes
  it blind to the scale of the residual stream, which grows with depth.
- Layer l is skipped when ``p_l < threshold``; threshold 0 never skips and gives
  the base model bit for bit (``torch.where`` picks the layer's output).
- Stage 1 trains the routers on the frozen base with a straight-through hard gate
  (forward 0/1, backward through p) and the loss KL(full model || routed model)
  + lambda * (kept fraction - target)^2. Stage 2 freezes the routers and fits LoRA
  adapters on the kept layers with the same KL objective (``first_train.py``).

Blocks: ``LayerRouter``, ``Routers`` (all layers, with their threshold),
``routed_logits`` (training/evaluation over whole sequences), ``first_prefill``
(batch-1 inference: decide and prefill, returns the skip set; decoding then uses
``Llama.skip``), ``LoRALinear`` + ``add_lora`` / ``merge_lora``, and the
self-describing routers file (``save_routers`` / ``load_routers``).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from edgekit.errors import EdgekitError

ROUTERS_FORMAT = "edgekit-first-routers"
ROUTERS_VERSION = 1


@dataclass(frozen=True)
class FiRSTConfig:
    n_layers: int
    dim: int
    threshold: float = 0.5        # skip layer l when its keep probability is below this; 0 = never skip
    keep_bias_init: float = 2.0   # sigmoid(2) = 0.88: every layer starts "kept"
    eps: float = 1e-5

    def __post_init__(self):
        if not 0.0 <= self.threshold <= 1.0:
            raise EdgekitError("bad_config", f"FiRST threshold {self.threshold} is outside [0, 1]",
                               fix="pass a threshold in [0, 1] (0 never skips, 0.5 is the default)")
        if self.n_layers < 1 or self.dim < 1:
            raise EdgekitError("bad_config", f"n_layers {self.n_layers} and dim {self.dim} must be positive",
                               fix="build the routers from the model's config: Routers.for_model(model)")


class LayerRouter(nn.Module):
    def __init__(self, dim: int, bias_init: float, eps: float):
        super().__init__()
        self.eps = eps
        self.proj = nn.Linear(dim, 1)
        nn.init.zeros_(self.proj.weight)
        nn.init.constant_(self.proj.bias, bias_init)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        """pooled (B, dim) mean prompt hidden state -> (B,) keep probability."""
        z = pooled * torch.rsqrt(pooled.pow(2).mean(-1, keepdim=True) + self.eps)
        return torch.sigmoid(self.proj(z))[..., 0]


class Routers(nn.Module):
    def __init__(self, cfg: FiRSTConfig):
        super().__init__()
        self.cfg = cfg
        self.layers = nn.ModuleList(LayerRouter(cfg.dim, cfg.keep_bias_init, cfg.eps) for _ in range(cfg.n_layers))

    @classmethod
    def for_model(cls, model, threshold: float = 0.5) -> "Routers":
        return cls(FiRSTConfig(n_layers=model.cfg.n_layers, dim=model.cfg.dim, threshold=threshold))

    def with_threshold(self, threshold: float) -> "Routers":
        """The same routers (shared weights) deciding at another threshold."""
        other = Routers.__new__(Routers)
        nn.Module.__init__(other)
        other.cfg = FiRSTConfig(**(asdict(self.cfg) | {"threshold": threshold}))
        other.layers = self.layers
        return other

    def keep(self, p: torch.Tensor) -> torch.Tensor:
        """Hard decision from keep probabilities: True = run the layer."""
        return p >= self.cfg.threshold


def pool_prompt(h: torch.Tensor, prompt_len: int) -> torch.Tensor:
    """(B, T, dim) -> (B, dim): the mean over the first prompt_len positions."""
    return h[:, :prompt_len].mean(1)


def routed_logits(model, routers: Routers, tokens: torch.Tensor, prompt_len: int, *, gate: str = "hard"):
    """Whole sequences, no cache: route from the first ``prompt_len`` tokens, apply the decisions everywhere.

    gate: "hard" (inference: 0/1, exact pass-through), "st" (straight-through: hard forward, soft
    backward, for training the routers). Returns (logits (B, T, vocab), keep probabilities (B, L),
    gates (B, L) as used in the forward).
    """
    if gate not in ("hard", "st"):
        raise EdgekitError("bad_gate", f"gate {gate!r} unknown; choose one of hard, st", fix="pass gate='hard'")
    b, t = tokens.shape
    k_cache, v_cache = model.empty_cache(b)
    probs, gates = [], []

    def route(i: int, x):  # every block runs; the gate mixes its output in per sequence
        p = routers.layers[i](pool_prompt(x, prompt_len))
        hard = routers.keep(p).to(x.dtype)
        g = hard if gate == "hard" else hard + p - p.detach()  # st: value 0/1, gradient of p
        probs.append(p)
        gates.append(g)
        if gate == "hard":
            return lambda x, y: torch.where(hard[:, None, None] > 0, y, x)
        return lambda x, y: x + g[:, None, None] * (y - x)

    context = model.step_context(torch.zeros(1, dtype=torch.long), t)
    x, _, _ = model.run_blocks(model.embed_tokens(tokens), context, k_cache, v_cache, route=route)
    return model.lm_head(model.norm(x)), torch.stack(probs, 1), torch.stack(gates, 1)


@torch.no_grad()
def first_prefill(model, routers: Routers, tokens: torch.Tensor, k_cache=None, v_cache=None):
    """Batch-1 inference prefill: decide layer by layer from the prompt and fill the cache of the kept layers.

    Returns (logits (1, T, vocab), k_cache, v_cache, skip set). Decode afterwards with
    ``model.skip = skip`` and the ordinary ``model(token, pos, k, v)`` step.
    """
    if tokens.shape[0] != 1:
        raise EdgekitError("batch_not_1", f"FiRST prefill takes one request, got batch {tokens.shape[0]}",
                           fix="route requests one at a time (each has its own skip set)")
    if k_cache is None:
        k_cache, v_cache = model.empty_cache(1)
    t = tokens.shape[1]
    skip = set()

    def route(i: int, x) -> bool:  # decided from the prompt's hidden state at layer i's input
        keep = bool(routers.keep(routers.layers[i](pool_prompt(x, t)))[0])
        if not keep:
            skip.add(i)
        return keep

    context = model.step_context(torch.zeros(1, dtype=torch.long), t)
    x, k_cache, v_cache = model.run_blocks(model.embed_tokens(tokens), context, k_cache, v_cache, route=route)
    return model.lm_head(model.norm(x)), k_cache, v_cache, frozenset(skip)


# ---------------------------------------------------------------- LoRA (stage 2)

LORA_TARGETS = r"layers\.\d+\.(self_attn|mlp)\.\w+_proj$"   # every linear of every block


class LoRALinear(nn.Module):
    """y = W x + (alpha / r) B A x with A (r, in) random, B (out, r) zero: starts equal to the base layer."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float):
        super().__init__()
        self.base, self.scale = base, alpha / rank
        self.lora_a = nn.Parameter(torch.randn(rank, base.in_features) / base.in_features ** 0.5)
        self.lora_b = nn.Parameter(torch.zeros(base.out_features, rank))

    def forward(self, x):
        return self.base(x) + (x @ self.lora_a.T @ self.lora_b.T) * self.scale

    def merged(self) -> nn.Linear:
        out = nn.Linear(self.base.in_features, self.base.out_features, bias=self.base.bias is not None)
        with torch.no_grad():
            out.weight.copy_(self.base.weight + self.scale * self.lora_b @ self.lora_a)
            if self.base.bias is not None:
                out.bias.copy_(self.base.bias)
        return out


def _replace(model: nn.Module, name: str, new: nn.Module) -> None:
    parent, _, leaf = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, leaf, new)


def add_lora(model: nn.Module, *, rank: int = 8, alpha: float = 16.0, targets: str = LORA_TARGETS,
             layers: set[int] | None = None) -> list[str]:
    """Wrap the nn.Linear modules whose name matches ``targets`` (in place); freeze everything else.

    ``layers`` limits the wrapping to those block indices (e.g. the kept layers). Returns the names wrapped.
    """
    pattern = re.compile(targets)
    names = [n for n, m in model.named_modules() if isinstance(m, nn.Linear) and pattern.search(n)
             and (layers is None or int(re.search(r"layers\.(\d+)\.", n).group(1)) in layers)]
    for p in model.parameters():
        p.requires_grad_(False)
    for n in names:
        _replace(model, n, LoRALinear(model.get_submodule(n), rank, alpha))
    return names


def merge_lora(model: nn.Module) -> nn.Module:
    """Fold every LoRALinear into a plain nn.Linear (in place); the model exports like the base."""
    for n, m in list(model.named_modules()):
        if isinstance(m, LoRALinear):
            _replace(model, n, m.merged())
    for p in model.parameters():
        p.requires_grad_(False)
    return model


# ---------------------------------------------------------------- the routers file

def save_routers(routers: Routers, path: str | Path, extra: dict | None = None) -> None:
    """safetensors with self-describing metadata: format, version, config (and e.g. the training target)."""
    import json

    from safetensors.torch import save_file

    meta = {"format": ROUTERS_FORMAT, "version": str(ROUTERS_VERSION), "config": json.dumps(asdict(routers.cfg)),
            "router": "sigmoid(w . rms(mean over prompt of h_in) + b)", "extra": json.dumps(extra or {})}
    save_file({k: v.contiguous() for k, v in routers.state_dict().items()}, str(path), metadata=meta)


def load_routers(path: str | Path, threshold: float | None = None) -> Routers:
    import json

    from safetensors import safe_open
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise EdgekitError("no_routers", f"FiRST routers file {path} does not exist",
                           fix="train routers with benchmarks/first_bench.py (writes routers/first_routers.safetensors)")
    with safe_open(str(path), "pt") as f:
        meta = f.metadata() or {}
    if meta.get("format") != ROUTERS_FORMAT:
        raise EdgekitError("not_routers", f"{path} has format {meta.get('format')!r}, not {ROUTERS_FORMAT!r}",
                           fix="pass the first_routers.safetensors written by FiRST training")
    if int(meta["version"]) > ROUTERS_VERSION:
        raise EdgekitError("routers_too_new", f"{path} is routers format version {meta['version']}; this "
                           f"edgekit reads up to {ROUTERS_VERSION}", fix="upgrade edgekit")
    cfg = FiRSTConfig(**json.loads(meta["config"]))
    if threshold is not None:
        cfg = FiRSTConfig(**(asdict(cfg) | {"threshold": threshold}))
    routers = Routers(cfg)
    routers.load_state_dict(load_file(str(path)))
    return routers.eval()


def check_routers_fit(routers: Routers, model) -> None:
    if (routers.cfg.n_layers, routers.cfg.dim) != (model.cfg.n_layers, model.cfg.dim):
        raise EdgekitError("routers_mismatch", f"routers for {routers.cfg.n_layers} layers x dim {routers.cfg.dim} "
                           f"do not fit a model of {model.cfg.n_layers} layers x dim {model.cfg.dim}",
                           fix="pass the routers trained for this checkpoint")
