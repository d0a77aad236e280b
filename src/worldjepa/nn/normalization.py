"""Data statistics that belong to a small network's architecture (the proprio head, the state readout, the
object locator): set once by its fit, kept in its config rather than its weights, and moved with `.to()`."""

from __future__ import annotations

from torch import nn, tensor

from worldjepa.errors import UserError


def set_normalization_buffers(
    module: nn.Module, sizes: dict[str, int], normalization: dict[str, list[float]] | None, what: str
) -> None:
    """Register on `module` one non-persistent float32 buffer per key of `sizes` (name -> number of values)
    from `normalization`, or, for None, the identity (0 for names ending in `mean`, 1 for the others); sets
    `module.normalized`. `what` names the network in the error for statistics of the wrong shape."""
    identity = {key: [0.0 if key.endswith("mean") else 1.0] * n for key, n in sizes.items()}
    given = identity if normalization is None else normalization
    if set(given) != set(sizes) or any(len(given[key]) != n for key, n in sizes.items()):
        raise UserError(
            f"{what} normalization needs {', '.join(f'{key} ({n} values)' for key, n in sizes.items())}; "
            f"got { ({key: len(values) for key, values in given.items()}) }"
        )
    module.normalized = normalization is not None
    module.normalization_keys = tuple(sizes)
    for key, values in given.items():
        module.register_buffer(key, tensor(values).float(), persistent=False)


def normalization_config(module: nn.Module) -> dict[str, list[float]] | None:
    """The statistics `set_normalization_buffers` set on `module`, for its config; None for the identity."""
    if not module.normalized:
        return None
    return {key: getattr(module, key).tolist() for key in module.normalization_keys}
