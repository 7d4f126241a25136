"""Resumable LLM training: model, AdamW and schedule state and the sampler's RNG on disk, without pickle.

``train_state/`` holds ``tensors.safetensors`` (the weights and every optimizer moment) and
``state.json`` (the step, the options it was started with, param groups, the schedule and the
numpy RNG state). It is written to a sibling folder and renamed into place, so an interruption
while saving leaves the previous state intact.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import torch

from edgekit.errors import EdgekitError

STATE_DIR = "train_state"


class TrainState:
    def __init__(self, directory: Path):
        self.dir = Path(directory)

    def exists(self) -> bool:
        return (self.dir / "state.json").is_file()

    def save(self, options: dict, step: int, model, opt, sched, sampler_state: dict) -> None:
        """``sampler_state``: the data RNG's bit_generator.state right after step ``step``."""
        from safetensors.torch import save_file

        tensors = {f"model.{k}": v.detach().contiguous() for k, v in model.state_dict().items()}
        opt_state = opt.state_dict()
        for idx, st in opt_state["state"].items():
            for key, value in st.items():
                tensors[f"opt.{idx}.{key}"] = torch.as_tensor(value).detach().contiguous()
        tensors["torch_rng"] = torch.get_rng_state()
        meta = {"step": step, "options": options, "param_groups": opt_state["param_groups"],
                "scheduler": sched.state_dict(), "numpy_rng": sampler_state}
        tmp = self.dir.with_name(self.dir.name + ".partial")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        save_file(tensors, str(tmp / "tensors.safetensors"))
        (tmp / "state.json").write_text(json.dumps(meta, indent=1))
        old = self.dir.with_name(self.dir.name + ".old")
        if self.dir.exists():
            os.replace(self.dir, old)
        os.replace(tmp, self.dir)
        shutil.rmtree(old, ignore_errors=True)

    def load(self, options: dict, model, opt, sched, rng: np.random.Generator) -> int:
        """Restore everything; return the number of steps already done."""
        from safetensors.torch import load_file

        meta = json.loads((self.dir / "state.json").read_text())
        if meta["options"] != json.loads(json.dumps(options)):
            diff = sorted(k for k in options if meta["options"].get(k) != json.loads(json.dumps(options[k])))
            raise EdgekitError("resume_mismatch", f"{self.dir} was started with other options ({', '.join(diff)})",
                               fix=f"pass the same options to resume, or delete {self.dir} to start over",
                               details={"saved": {k: meta["options"].get(k) for k in diff}})
        tensors = load_file(str(self.dir / "tensors.safetensors"))
        model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
        state: dict[int, dict] = {}
        for key, value in tensors.items():
            if key.startswith("opt."):
                _, idx, name = key.split(".", 2)
                state.setdefault(int(idx), {})[name] = value
        opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
        sched.load_state_dict(meta["scheduler"])
        torch.set_rng_state(tensors["torch_rng"])
        rng.bit_generator.state = meta["numpy_rng"]
        return int(meta["step"])

    def remove(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)
