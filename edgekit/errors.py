"""Error types. User mistakes and internal failures are different types.

A user error names the bad value, the valid choices and the fix, so the CLI can
print it without a traceback.
"""

from __future__ import annotations


class EdgekitError(Exception):
    """A mistake the user can fix: bad argument, missing extra, unconvertible op."""

    def __init__(self, code: str, message: str, *, fix: str | None = None, details: dict | None = None):
        self.code = code
        self.message = message
        self.fix = fix
        self.details = details or {}
        super().__init__(self.__str__())

    def __str__(self) -> str:
        text = f"[{self.code}] {self.message}"
        if self.fix:
            text += f"\n  fix: {self.fix}"
        return text


class InternalError(Exception):
    """A bug in edgekit: report it. Never raised for user input."""


class MissingDependency(EdgekitError):
    def __init__(self, package: str, extra: str, purpose: str):
        super().__init__(
            "missing_dependency",
            f"{purpose} needs the Python package '{package}', which is not installed",
            fix=f"install the '{extra}' extra from your edgekit checkout: pip install '.[{extra}]'",
            details={"package": package, "extra": extra},
        )


class UnknownChoice(EdgekitError):
    def __init__(self, what: str, value: object, choices: list[str] | tuple[str, ...]):
        choice_list = ", ".join(str(c) for c in choices)
        super().__init__(
            f"unknown_{what.replace(' ', '_')}",
            f"{what} {value!r} unknown; choose one of {choice_list}",
            fix=f"pass one of: {choice_list}",
            details={"value": value, "choices": list(choices)},
        )


class UnsupportedOp(EdgekitError):
    """An operator the target cannot convert."""

    def __init__(self, target: str, op: str, layer: str | None, reason: str, suggestion: str):
        where = f" in layer '{layer}'" if layer else ""
        super().__init__(
            "unsupported_op",
            f"target '{target}' cannot convert op '{op}'{where}: {reason}",
            fix=suggestion,
            details={"target": target, "op": op, "layer": layer},
        )


class ParityError(EdgekitError):
    def __init__(self, target: str, metrics: dict, tolerance: dict):
        shown = ", ".join(f"{k}={v:.6g}" for k, v in metrics.items() if isinstance(v, float))
        needed = ", ".join(f"{k} {v}" for k, v in tolerance.items())
        super().__init__(
            "parity_failed",
            f"{target} artifact disagrees with the PyTorch model: {shown} (needed: {needed})",
            fix="check the model for ops with target-specific numerics, try compute precision fp32, "
            "or pass --no-parity-gate (export(..., parity_gate=False)) to keep the artifact anyway",
            details={"target": target, "metrics": metrics, "tolerance": tolerance},
        )


class InputMismatch(EdgekitError):
    def __init__(self, name: str, expected: object, given: object, what: str = "shape", why: str = ""):
        super().__init__(
            "input_mismatch",
            f"input '{name}': expected {what} {expected}, given {given}" + (f" ({why})" if why else ""),
            fix=f"pass an array with {what} {expected}",
            details={"input": name, "expected": expected, "given": given, "what": what, "why": why},
        )
