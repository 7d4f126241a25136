"""Export a Llama checkpoint directory to targets: what `edgekit export-llm` runs, callable from Python.

The steps around the per-target exporters: check the tokenizer, load the checkpoint
(a Hugging Face-format one, or an eDKM clustered one whose ledger says how each target
stores its tables), take the parity tokens from the held-out text, and export each target plainly
(exporters/llm.py) or, with FiRST routers, per layer (exporters/llm_first.py).

    >>> from edgekit.exporters.llm_export import export_checkpoint
    >>> arts = export_checkpoint("out/llm/llama_pydoc", ["executorch"], "out")  # doctest: +SKIP
    >>> arts["executorch"].path                                                  # doctest: +SKIP
    PosixPath('out/llama_pydoc/executorch')
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable

from edgekit.errors import EdgekitError

log = logging.getLogger(__name__)


def export_checkpoint(checkpoint: str | Path, targets: list[str] | tuple[str, ...], out: str | Path, *,
                      prefill_len: int = 16, weights: str = "fp32", group_size: int = 32,
                      kernels: str = "none", recipe: str | None = None, exclude: str | None = None,
                      first: str | Path | None = None, first_threshold: float | None = None,
                      options: dict[str, dict] | None = None, allow_decompressed: bool = False,
                      on_start: Callable[[str], None] | None = None,
                      on_note: Callable[[str], None] | None = None, **llm_options) -> dict:
    """{target: Artifact} for ``checkpoint`` (config.json, *.safetensors, tokenizer.json), written to
    ``out/<checkpoint name>/<target>`` (``<target>-first`` with FiRST ``first`` routers).

    ``options``: {target: its options} (exporters/llm_options.py). ``allow_decompressed``: keep artifacts that
    store a clustered checkpoint's tables dense (else ``compression_lost``, as for ``edgekit export``).
    ``on_start(target)`` is called before each target, ``on_note(text)`` with facts worth telling the user
    (a clustered checkpoint's sizes). ``kernels="edgekit"`` keeps clustered / shift linears packed on edgekit's
    ops; ``recipe`` (with ``exclude``) compresses an fp32 checkpoint's linears first (exporters/llm_kernels.py).
    ``llm_options`` go to ``export_llm`` unchanged.
    """
    from edgekit.exporters.llm import export_llm, llm_compression_section
    from edgekit.exporters.llm_compress import is_clustered, load_clustered
    from edgekit.model_zoo.llama import load_hf_checkpoint
    from edgekit.model_zoo.text import encode_split, load_tokenizer

    ckpt = Path(checkpoint)
    tokenizer_file = ckpt / "tokenizer.json"
    if not tokenizer_file.is_file():
        raise EdgekitError("no_tokenizer", f"{ckpt} has no tokenizer.json",
                           fix="save the tokenizer (tokenizers' Tokenizer.save) next to the checkpoint")
    if first is not None and (weights != "fp32" or kernels != "none" or recipe):
        raise EdgekitError("first_weights_unsupported", "--first exports fp32 weights only",
                           fix="drop --weights / --executorch-kernels / --recipe, or export without --first")
    clustered = is_clustered(ckpt)
    if clustered:  # eDKM indices + tables: the ledger says per target how the artifact stores them
        model = load_clustered(ckpt)
        s = llm_compression_section(model, allow_decompressed=True)["summary"]  # the sizes, before any target
        stored = ("packed, on edgekit's kernels" if kernels != "none" else "dense fp32 where the target has no "
                  "table op" + (" (--allow-decompressed)" if allow_decompressed else " (that needs --allow-decompressed;"
                                " --executorch-kernels edgekit and coreml keep the tables)"))
        note = (f"clustered linear weights: {s['expected_bytes']:,} B (indices + tables) vs {s['dense_bytes']:,} B "
                f"fp32 ({s['expected_bytes'] / s['dense_bytes']:.3f}x); the artifact stores them {stored}")
        log.info(note)
        if on_note:
            on_note(note)
    else:
        model = load_hf_checkpoint(ckpt)
    if recipe:
        if clustered:
            raise EdgekitError("bad_option", f"{ckpt} is already clustered (eDKM); --recipe {recipe} would "
                               "cluster it again", fix="drop --recipe, or export the fp32 checkpoint with it")
        from edgekit.exporters.llm_kernels import apply_recipe

        model, _ = apply_recipe(model, recipe, exclude)
    tokens = encode_split(load_tokenizer(tokenizer_file), "val")
    routers = None
    if first is not None:
        from edgekit.model_zoo.first import load_routers

        routers = load_routers(first, threshold=first_threshold)
    artifacts = {}
    for target in targets:
        if on_start:
            on_start(target)
        if routers is not None:
            from edgekit.exporters.llm_first import export_first_llm

            artifacts[target] = export_first_llm(
                model, routers, tokenizer_file, Path(out) / ckpt.name / f"{target}-first", name=ckpt.name,
                target=target, prefill_len=prefill_len, calibration_tokens=tokens, parity_tokens=tokens,
                options=(options or {}).get(target), allow_decompressed=allow_decompressed)
        else:
            artifacts[target] = export_llm(
                model, tokenizer_file, target, Path(out) / ckpt.name / target, name=ckpt.name,
                prefill_len=prefill_len, parity_tokens=tokens, weights=weights, group_size=group_size,
                options=(options or {}).get(target), kernels=kernels, allow_decompressed=allow_decompressed,
                **llm_options)
    return artifacts
