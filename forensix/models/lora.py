"""LoRA adapters folded into their base weights for the length of a ``with`` block (fast decoding).

A LoRA-wrapped linear layer costs two extra small matrix products per call, which is about half of
the matrix-product calls while decoding one token at a time. :func:`merged_lora` swaps each base
weight for ``W + scale * B @ A`` and switches the adapter path off; on exit the *original* weight
tensors are put back, so the model is bit-for-bit what it was (peft's ``unmerge`` subtracts the
delta again, which leaves rounding residue in the weights).

Example:
    >>> import torch
    >>> from peft import LoraConfig, inject_adapter_in_model
    >>> net = inject_adapter_in_model(LoraConfig(r=2, target_modules=["0"]), torch.nn.Sequential(torch.nn.Linear(4, 4)))
    >>> _ = torch.nn.init.normal_(net[0].lora_B["default"].weight)
    >>> x = torch.rand(3, 4)
    >>> with merged_lora(net):
    ...     merged = net(x)
    >>> torch.allclose(merged, net(x), atol=1e-6)
    True
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

from forensix.config import LanguageConfig


def inject_lora(model: nn.Module, config: LanguageConfig, seed: int) -> None:
    """Inject LoRA adapters (``peft``) into ``model``'s ``config.lora_targets`` layers, initialised from ``seed``."""
    from peft import LoraConfig, inject_adapter_in_model

    lora = LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                      target_modules=list(config.lora_targets))
    torch.manual_seed(seed)
    inject_adapter_in_model(lora, model)


def _lora_layers(module: nn.Module) -> list[nn.Module]:
    """peft LoRA linear layers with an active, unmerged adapter path (others are left alone)."""
    return [
        m for m in module.modules()
        if hasattr(m, "get_delta_weight") and hasattr(m, "base_layer") and not m.disable_adapters and not m.merged
        and not getattr(m, "lora_variant", None)
    ]


@contextlib.contextmanager
def merged_lora(module: nn.Module) -> Iterator[int]:
    """Fold every active LoRA adapter of ``module`` into its base weight inside the block (no grad).

    Yields the number of layers merged (0 when ``module`` has no LoRA: then nothing changes).
    """
    layers = _lora_layers(module)
    saved: list[tuple[nn.Module, torch.Tensor]] = []
    try:
        with torch.no_grad():
            for layer in layers:
                weight = layer.base_layer.weight
                delta = sum(layer.get_delta_weight(name) for name in layer.active_adapters if name in layer.lora_A)
                saved.append((layer, weight.data))
                weight.data = weight.data + delta.to(weight.dtype)
                layer._disable_adapters = True
        yield len(layers)
    finally:
        for layer, original in saved:
            layer.base_layer.weight.data = original
            layer._disable_adapters = False
