"""eDKM for the Llama decoder: cluster its linear layers to 3/4 bits while fine-tuning under torch.distributed.

The attention (q/k/v/o) and MLP (gate/up/down) projections get a DKM
parametrization (``compression/dkm.py``) with eDKM's saved-tensor hooks
(``compression/edkm.py``): the clustered column is the bf16 rounding of the
weights, so every N x K map DKM saves for backward is stored as its distinct rows
plus an int16 row index, and with ``shard=True`` each rank keeps 1/world of that
index (``unpack`` all-gathers it). Embeddings, norms and ``lm_head`` stay fp32 and
are fine-tuned with the rest (see docs/llm.md for why).

Data parallel without DDP: each rank draws its own batch, gradients are averaged
with one ``all_reduce`` of the flattened gradients after ``backward`` — so the
collectives the hooks issue during ``backward`` are never interleaved with a
bucketed DDP all-reduce on the same process group. gloo on CPU, NCCL on GPUs.

    edgekit compress-llm out/llm/llama_pydoc --bits 4 --nproc 2 --steps 150 --out out/llm/edkm4
    python -m torch.distributed.run --nproc-per-node 2 -m edgekit.cli compress-llm out/llm/llama_pydoc --bits 3 --out out/llm/edkm3
    edgekit export-llm out/llm/edkm4/llama_pydoc_edkm4 --target onnx   # decompressed fp32 artifact

The clustered checkpoint it writes is described in ``exporters/llm_checkpoint.py``.
"""

from __future__ import annotations

import json
import math
import os
import resource
import socket
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from edgekit.errors import EdgekitError
from edgekit.sortsafe import unique

# The checkpoint format lives in llm_checkpoint; its names stay importable from here.
from edgekit.exporters.llm_checkpoint import (  # noqa: F401
    CLUSTERED_FILE, FORMAT_KIND, FORMAT_VERSION, RESULT_FILE, clustered_layers, is_clustered, layer_bytes,
    load_clustered, lut_indices, save_clustered, size_report)

# The linear layers eDKM clusters: attention q/k/v/o and MLP gate/up/down of every decoder layer.
LINEAR_PATTERN = r"layers\.\d+\.(self_attn\.[qkvo]_proj|mlp\.(gate|up|down)_proj)"
BACKENDS = ("auto", "gloo", "nccl")


def llm_recipe(bits: int, *, edkm: bool = True, shard: bool = True, tau: float = 0.01,
               weight_dtype: str = "bfloat16", pattern: str = LINEAR_PATTERN):
    """The eDKM recipe for a Llama decoder: ``pattern`` layers only (lm_head, embeddings left alone)."""
    from edgekit.exporters.compression import Recipe, Step
    from edgekit.exporters.compression.dkm import DKMConfig

    cfg = DKMConfig(bits=bits, tau=tau, edkm=edkm, shard=shard and edkm, weight_dtype=weight_dtype)
    name = f"{'edkm' if edkm else 'dkm'}{bits}_llm"
    return Recipe(name, (Step(by_name={pattern: cfg}),))


@dataclass(frozen=True)
class FinetuneConfig:
    """Fine-tuning under eDKM. ``batch`` is global (split over ranks); ``nproc`` processes are spawned
    unless a launcher (torchrun) already set RANK/WORLD_SIZE."""

    steps: int = 150
    batch: int = 8
    seq_len: int = 128
    lr: float = 3e-4
    seed: int = 0
    nproc: int = 2
    backend: str = "auto"
    threads: int = 1           # torch threads per process

    def __post_init__(self):
        def check(name, ok, valid):
            if not ok:
                raise EdgekitError("bad_finetune_config", f"FinetuneConfig.{name} = {getattr(self, name)!r} is "
                                   f"invalid; valid: {valid}", fix=f"set {name} to {valid}")

        check("steps", self.steps >= 1, "an integer >= 1")
        check("nproc", self.nproc >= 1, "an integer >= 1")
        check("batch", self.batch >= self.nproc and self.batch % self.nproc == 0, "a multiple of nproc")
        check("seq_len", 2 <= self.seq_len, "an integer >= 2")
        check("lr", self.lr > 0, "a float > 0")
        check("backend", self.backend in BACKENDS, " or ".join(BACKENDS))
        check("threads", self.threads >= 1, "an integer >= 1")


# -- the clustered checkpoint -------------------------------------------------------------------------
# -- distributed fine-tuning ---------------------------------------------------------------------------
def attach_dkm(model, recipe, naive: bool = False) -> dict:
    """Register the recipe's DKM parametrizations; returns name -> (module, config, packer or None).

    ``naive=True`` counts what plain DKM keeps for backward (``edkm.NaivePacker``) instead of eDKM's hooks.
    """
    from torch.nn.utils import parametrize

    from edgekit.exporters.compression.dkm import _make_param_class
    from edgekit.exporters.compression.edkm import NaivePacker, SavedTensorPacker

    cls = _make_param_class()
    out = {}
    for step in recipe.steps:
        for name, (module, cfg) in step.targets(model).items():
            p = cls(module.weight.detach(), cfg, None).to(module.weight.device)
            if naive:
                p.hooks = NaivePacker()
            elif cfg.edkm:
                p.hooks = SavedTensorPacker(shard=cfg.shard and _world() > 1)
            parametrize.register_parametrization(module, "weight", p, unsafe=True)
            out[name] = (module, cfg, p.hooks)
    return out


def post_training(model, bits: int):
    """A copy with the same layers k-means-clustered without fine-tuning (the reference eDKM must beat)."""
    from edgekit.exporters.compression import Recipe, Step, compress
    from edgekit.exporters.compression.palettize import PalettizeConfig

    return compress(model, Recipe(f"palettize{bits}_llm", (Step(by_name={LINEAR_PATTERN: PalettizeConfig(bits)}),)))[0]


def finalize(model, targets: dict) -> None:
    """Hard-assign, snap to fp16-exact tables (one k-means on the hard values) and record the LUT."""
    from torch.nn.utils import parametrize

    from edgekit.exporters.compression.palettize import palettize_array, write_lut

    for name, (module, cfg, _) in targets.items():
        module.eval()
        parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)
        clustered, tables, _ = palettize_array(module.weight.detach().cpu().numpy(), cfg.bits)
        write_lut(module, clustered, cfg.bits, tables, cfg.type_tag)


def _world() -> int:
    import torch.distributed as dist

    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def _average_gradients(params, world: int) -> None:
    import torch
    import torch.distributed as dist

    grads = [p.grad for p in params if p.grad is not None]
    if world == 1 or not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= world
    i = 0
    for g in grads:
        g.copy_(flat[i:i + g.numel()].view_as(g))
        i += g.numel()


def finetune(model, recipe, train_ids: np.ndarray, cfg: FinetuneConfig, *, naive: bool = False,
             show_progress: bool = False) -> tuple[dict, dict]:
    """Fine-tune under DKM/eDKM on this rank (``torch.distributed`` initialised or world of 1).

    Returns (targets, stats): stats hold per-step losses, the peak bytes the DKM layers keep for
    backward on this rank (summed over layers at the end of a forward) and the wall time.
    """
    import torch

    from edgekit.model_zoo.llm_train import batches, full_logits
    from edgekit.progress import progress

    world, rank = _world(), _rank()
    targets = attach_dkm(model, recipe, naive=naive)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, betas=(0.9, 0.95), weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.1 + 0.45 * (1 + math.cos(math.pi * min(1.0, s / cfg.steps))))
    rng = np.random.default_rng([cfg.seed, rank])
    data = batches(train_ids, cfg.seq_len, cfg.batch // world, rng)
    device = next(model.parameters()).device
    saved_peak, losses = 0, []
    model.train()
    start = time.perf_counter()
    for _ in progress(range(cfg.steps), desc=f"eDKM rank {rank}", enabled=show_progress and rank == 0):
        x, y = next(data)
        logits = full_logits(model, x.to(device))
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.to(device).reshape(-1))
        saved_peak = max(saved_peak, sum(h.bytes_now for _, _, h in targets.values() if h is not None))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        _average_gradients(params, world)
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
    seconds = time.perf_counter() - start
    model.eval()
    stats = {"steps": cfg.steps, "world": world, "rank": rank, "seconds": seconds,
             "seconds_per_step": seconds / cfg.steps, "first_loss": losses[0],
             "final_loss": float(np.mean(losses[-10:])), "dkm_saved_bytes_peak": saved_peak,
             "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}
    return targets, stats


def _rank() -> int:
    import torch.distributed as dist

    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def _backend(name: str) -> str:
    import torch

    if name == "auto":
        return "nccl" if torch.cuda.is_available() else "gloo"
    return name


@dataclass(frozen=True)
class Job:
    """One compress-llm run (what every rank needs)."""

    checkpoint: str
    out_dir: str
    bits: int
    finetune: FinetuneConfig
    naive: bool = False            # plain DKM (memory baseline): no eDKM hooks, nothing saved but stats
    save: bool = True
    name: str = ""


def run_rank(job: Job) -> dict | None:
    """Body of one process; torch.distributed must already be initialised when world > 1."""
    import torch

    from edgekit.model_zoo.llama import load_hf_checkpoint
    from edgekit.model_zoo.llm_train import perplexity
    from edgekit.model_zoo.text import encode_split, load_tokenizer

    torch.set_num_threads(job.finetune.threads)
    torch.manual_seed(job.finetune.seed)
    ckpt = Path(job.checkpoint)
    tok = load_tokenizer(ckpt / "tokenizer.json")
    train_ids, val_ids = encode_split(tok, "train"), encode_split(tok, "val")
    model = load_hf_checkpoint(ckpt)
    if _backend(job.finetune.backend) == "nccl":
        model = model.to(torch.device("cuda", int(os.environ.get("LOCAL_RANK", _rank())) % torch.cuda.device_count()))
    rank = _rank()
    result = {"checkpoint": str(ckpt), "bits": job.bits, "naive": job.naive,
              "finetune": asdict(job.finetune)}
    recipe = llm_recipe(job.bits, edkm=not job.naive)
    if rank == 0 and not job.naive:
        result["fp32_perplexity"] = perplexity(model, val_ids, job.finetune.seq_len)
        result["ptq_perplexity"] = perplexity(post_training(model, job.bits), val_ids, job.finetune.seq_len)
    result["recipe"] = recipe.to_dict()
    targets, stats = finetune(model, recipe, train_ids, job.finetune, naive=job.naive, show_progress=True)
    gathered = [stats]
    if _world() > 1:
        import torch.distributed as dist

        gathered = [None] * _world()
        dist.all_gather_object(gathered, stats)
    result["ranks"] = gathered
    if rank != 0:
        return None
    finalize(model, targets)
    model = model.cpu()
    if not job.naive:
        result["perplexity"] = perplexity(model, val_ids, job.finetune.seq_len)
        result["size"] = size_report(model)
        result["unique_values_max"] = max(int(unique(m.weight.detach().numpy()).size)  # sort-safe (float16)
                                          for m, _, _ in targets.values())
    if job.save:
        name = job.name or f"{ckpt.name}_{recipe.name.removesuffix('_llm')}"
        result["clustered_checkpoint"] = str(save_clustered(model, Path(job.out_dir) / name,
                                                            ckpt / "tokenizer.json", result))
    return result


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _spawned(rank: int, world: int, port: int, job: Job, result_path: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    _launched(job, result_path)


def _launched(job: Job, result_path: str | None) -> dict | None:
    """Under a launcher (RANK/WORLD_SIZE set): join the group, run, leave."""
    import torch
    import torch.distributed as dist

    torch.set_num_threads(job.finetune.threads)
    backend = _backend(job.finetune.backend)
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)) % torch.cuda.device_count())
    dist.init_process_group(backend)
    try:
        result = run_rank(job)
        if result is not None and result_path:
            Path(result_path).write_text(json.dumps(result, indent=2))
        dist.barrier()
    finally:
        dist.destroy_process_group()
    return result


def compress_llm(job: Job) -> dict:
    """Run ``job`` on ``job.finetune.nproc`` spawned processes (or in this one when a launcher started it)."""
    import tempfile

    import torch.multiprocessing as mp

    if "RANK" in os.environ and "WORLD_SIZE" in os.environ:       # torchrun: this process is one rank
        return _launched(job, None) or {}
    if job.finetune.nproc == 1:
        return run_rank(job)
    with tempfile.TemporaryDirectory() as tmp:
        result_path = str(Path(tmp) / "result.json")
        mp.spawn(_spawned, args=(job.finetune.nproc, _free_port(), job, result_path), nprocs=job.finetune.nproc,
                 join=True)
        return json.loads(Path(result_path).read_text())
