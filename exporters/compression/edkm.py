"""eDKM: shrink what DKM saves for backward (ALGORITHMS.md §5.2).

DKM keeps several N x K maps per iteration (distances, attention) for backward.
With 16-bit weights there are at most 65,536 distinct weight values, and every
row of those maps is a function of its weight value alone, so a map is stored as
its distinct rows (<= 65,536 x K) plus one shared row index of N entries,
bit-packed at ceil(log2(distinct rows)) bits per entry in a uint8 buffer (12 bits
for a 4M-weight bf16 layer with ~3,600 distinct values; 8 bits or fewer when there
are at most 256). On top: tensors already stored (views, the same tensor saved by two ops) are
stored once; CUDA tensors go to CPU; with ``shard=True`` each torch.distributed
rank keeps 1/world of the row index, of the distinct rows and of unshrinkable
tensors, and ``unpack`` all-gathers them.

    packer = SavedTensorPacker()
    with packer.scope(x):          # x: the (N, 1) column being clustered
        out = dkm_iterate(x, ...)  # tensors saved for backward go through pack/unpack
    packer.stats()                 # bytes stored now and at peak
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

from edgekit.kernels.bitpack import pack_bits_torch, unpack_bits_torch



def index_bits(distinct: int) -> int:
    """Bits per row-index entry for ``distinct`` distinct rows."""
    return max(1, (int(distinct) - 1).bit_length())


@dataclass
class _PackedIndex:
    """A row index of ``count`` entries stored at ``bits`` bits each (uint8 buffer)."""

    data: object
    bits: int
    count: int

    @classmethod
    def of(cls, values, bits: int) -> "_PackedIndex":
        return cls(pack_bits_torch(values, bits), bits, values.numel())

    def values(self):
        return unpack_bits_torch(self.data, self.bits, self.count)


@dataclass
class _Scope:
    rows: int                      # N
    first: object = None           # index of the first occurrence of each distinct x (U,)
    inverse: object = None         # row -> distinct id, a _PackedIndex (of this rank's shard), shared by all maps
    full_inverse: object = None    # cache of the gathered inverse during backward
    forward_inverse: object = None  # the whole unpacked index (int64), only while the forward runs


@dataclass
class _Stored:
    kind: str                      # "plain" | "unique" | "shard"
    data: object
    shape: tuple = ()
    dtype: object = None
    device: object = None
    scope: _Scope | None = None
    refs: int = 0
    distinct: int = 0              # "unique": number of distinct rows (all ranks together)


def _nbytes(t) -> int:
    return t.numel() * t.element_size()


@dataclass
class SavedTensorPacker:
    shard: bool = False
    offload: bool = True
    min_rows: int = 1024
    bytes_now: int = 0
    bytes_peak: int = 0
    index_bytes: int = 0           # of which packed row indices (all scopes)
    index_bits: int | None = None  # bits per row-index entry in the last scope
    _seen: dict = field(default_factory=dict)
    _scope: _Scope | None = None

    @contextlib.contextmanager
    def scope(self, x):
        """Pack/unpack every tensor saved for backward while clustering the column ``x`` (N, 1)."""
        import torch

        prev = self._scope
        self._scope = _Scope(rows=x.shape[0])
        if x.dtype in (torch.float16, torch.bfloat16) and x.shape[0] > self.min_rows:
            # unique on the 16-bit patterns: an integer sort (half-precision float sorts are the ones that
            # go wrong on some AVX-512 CPUs, see edgekit/sortsafe.py); equal patterns are equal values
            uniq, inverse = torch.unique(x.detach().view(-1).view(torch.int16), return_inverse=True)
            if uniq.numel() <= 65536:
                first = torch.full((uniq.numel(),), x.shape[0], dtype=torch.int64, device=x.device)
                first.scatter_reduce_(0, inverse, torch.arange(x.shape[0], device=x.device), reduce="amin")
                self._scope.first = first
                # every rank computed the whole index from x: the forward checks against it without a
                # collective; only the packed (sharded) copy outlives the forward
                self._scope.forward_inverse = inverse
                self._scope.inverse = _PackedIndex.of(self._keep_shard(inverse).cpu(), index_bits(uniq.numel()))
                self._account(self._scope.inverse.data)
                self.index_bytes += _nbytes(self._scope.inverse.data)
                self.index_bits = self._scope.inverse.bits
        try:
            with torch.autograd.graph.saved_tensors_hooks(self.pack, self.unpack):
                yield self
        finally:
            self._scope.forward_inverse = self._scope.first = None  # forward-only
            self._scope = prev

    # -- hooks ---------------------------------------------------------------------------
    def pack(self, t):
        import weakref

        key = (t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape), tuple(t.stride()), t.dtype)
        hit = self._seen.get(key)
        # the same live tensor saved twice: store it once (a freed tensor's address can be reused)
        if hit is not None and hit[0]() is t:
            hit[1].refs += 1
            return hit[1]
        stored = self._pack_new(t)
        self._seen[key] = (weakref.ref(t), stored)
        return stored

    def unpack(self, stored: _Stored):

        if stored.kind == "plain":
            return stored.data.to(stored.device, non_blocking=True)
        if stored.kind == "shard":
            return self._gather(stored.data, stored.shape[0]).view(stored.shape).to(stored.device)
        scope = stored.scope
        if scope.full_inverse is None:
            scope.full_inverse = self._gather_index(scope)
        rows = self._gather(stored.data, stored.distinct) if self.shard else stored.data
        return rows.to(stored.device, non_blocking=True)[scope.full_inverse.to(stored.device)]

    # -- helpers -------------------------------------------------------------------------
    def _pack_new(self, t) -> _Stored:
        scope = self._scope
        dev = t.device
        # (N, 1) columns too: the row index is shared, so x itself costs nothing extra
        if (scope is not None and scope.first is not None and t.dim() == 2 and t.shape[0] == scope.rows
                and t.shape[1] >= 1):
            rows = t.detach()[scope.first.to(dev)]
            if bool((rows[scope.forward_inverse.to(dev)] == t.detach()).all()):
                distinct = rows.shape[0]
                rows = self._to_host(self._keep_shard(rows))   # sharded: 1/world of the distinct rows
                self._account(rows)
                return _Stored("unique", rows, tuple(t.shape), t.dtype, dev, scope, distinct=distinct)
        if self.shard and t.dim() >= 1 and t.shape[0] > self.min_rows:
            part = self._to_host(self._keep_shard(t.detach()))
            self._account(part)
            return _Stored("shard", part, tuple(t.shape), t.dtype, dev)
        data = self._to_host(t.detach())
        self._account(data)
        return _Stored("plain", data, tuple(t.shape), t.dtype, dev)

    def _to_host(self, t):
        if self.offload and t.is_cuda:
            return t.to("cpu", non_blocking=True).pin_memory()
        return t

    def _account(self, t) -> None:
        self.bytes_now += _nbytes(t)
        self.bytes_peak = max(self.bytes_peak, self.bytes_now)

    def _keep_shard(self, t):
        if not self.shard:
            return t
        import torch.distributed as dist

        world, rank = dist.get_world_size(), dist.get_rank()
        size = -(-t.shape[0] // world)
        return t[rank * size:(rank + 1) * size].clone()

    def _gather_index(self, scope: _Scope):
        """The whole row index as int64 (all-gathered and unpacked per rank when sharded)."""
        import torch

        if not self.shard:
            return scope.inverse.values()
        import torch.distributed as dist

        world = dist.get_world_size()
        size = -(-scope.rows // world)
        mine = scope.inverse.values()
        padded = torch.zeros(size, dtype=torch.int64)
        padded[:mine.numel()] = mine
        # equal length on every rank; NCCL moves CUDA tensors only, gloo CPU tensors
        dev = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else "cpu"
        packed = pack_bits_torch(padded, scope.inverse.bits).to(dev)
        bufs = [torch.empty_like(packed) for _ in range(world)]
        dist.all_gather(bufs, packed)
        return torch.cat([unpack_bits_torch(b.cpu(), scope.inverse.bits, size) for b in bufs])[:scope.rows]

    def _gather(self, part, rows: int):
        if not self.shard:
            return part
        import torch
        import torch.distributed as dist

        world = dist.get_world_size()
        size = -(-rows // world)
        # NCCL moves CUDA tensors only; gloo moves CPU tensors
        dev = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else "cpu"
        padded = torch.zeros((size, *part.shape[1:]), dtype=part.dtype, device=dev)
        padded[:part.shape[0]] = part.to(dev)
        # gloo has no int16/bf16 collectives: move the bytes
        raw = padded.reshape(size, -1).view(torch.uint8)
        bufs = [torch.empty_like(raw) for _ in range(world)]
        dist.all_gather(bufs, raw)
        return torch.cat(bufs).view(part.dtype).reshape(world * size, *part.shape[1:])[:rows]

    def reset(self) -> None:
        self._seen.clear()
        self.bytes_now = 0
        self.index_bytes = 0

    def stats(self) -> dict:
        return {"bytes_now": self.bytes_now, "bytes_peak": self.bytes_peak, "index_bytes": self.index_bytes,
                "index_bits": self.index_bits}


@dataclass
class NaivePacker:
    """Counts what autograd keeps for backward without eDKM (each storage once)."""

    bytes_now: int = 0
    bytes_peak: int = 0
    _storages: set = field(default_factory=set)

    @contextlib.contextmanager
    def scope(self, x):
        import torch

        with torch.autograd.graph.saved_tensors_hooks(self.pack, lambda t: t):
            yield self

    def reset(self) -> None:
        self._storages.clear()
        self.bytes_now = 0

    def pack(self, t):
        ptr = t.untyped_storage().data_ptr()
        if ptr not in self._storages:
            self._storages.add(ptr)
            self.bytes_now += t.untyped_storage().nbytes()
            self.bytes_peak = max(self.bytes_peak, self.bytes_now)
        return t
