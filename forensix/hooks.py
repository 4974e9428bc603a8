"""Named hook points, the activation cache, and attention that can be watched and edited.

Every piece of a forensix model passes its interesting tensors through :class:`HookPoint`
identity modules with stable dotted names (``vision.blocks.3.attn.pattern``, ``lm.logits``, ...).
A hook is a function ``fn(tensor, hook) -> tensor | None``; returning a tensor replaces the value
in the forward pass, returning ``None`` only observes it.

Attention probabilities inside ``transformers`` models are reached through an attention function
registered as ``"forensix"`` in ``transformers.AttentionInterface``: it computes eager attention and
passes the probabilities through the attention module's ``hook_pattern`` hook point, so patterns can
be read *and* edited. Models run with their fast backend (sdpa) until a hook or cache asks for a
pattern; :func:`attention_implementation` switches inside a context and restores it afterwards.

Example:
    >>> import torch
    >>> hp = HookPoint("demo.out")
    >>> with add_hooks({"demo.out": hp}, [("demo.out", lambda t, hook: t * 2)]):
    ...     hp(torch.ones(1)).item()
    2.0
    >>> hp(torch.ones(1)).item()
    1.0
"""

from __future__ import annotations

import contextlib
import fnmatch
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import torch
from torch import nn
from transformers import AttentionInterface, PretrainedConfig
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, eager_mask

from forensix.errors import BadConfigError, UnknownHookError

HookFn = Callable[[torch.Tensor, "HookPoint"], "torch.Tensor | None"]

#: Name of the hookable attention implementation registered with ``transformers``.
HOOKED_ATTENTION = "forensix"


class HookPoint(nn.Module):
    """An identity module with a stable name where hooks can read or replace a tensor.

    Example:
        >>> hp = HookPoint("trace.out")
        >>> hp.name
        'trace.out'
    """

    def __init__(self, name: str = "") -> None:
        super().__init__()
        self.name = name

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x

    @property
    def has_hooks(self) -> bool:
        """True while any hook is registered here."""
        return bool(self._forward_hooks)

    def add_hook(self, fn: HookFn) -> torch.utils.hooks.RemovableHandle:
        """Register ``fn(tensor, hook)``; the handle removes it."""

        def _forward_hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> Any:
            return fn(output, self)

        return self.register_forward_hook(_forward_hook)

    def extra_repr(self) -> str:
        return repr(self.name)


def _hooked_eager_attention(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float | None = None,
    dropout: float = 0.0,
    **kwargs: Any,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Eager attention (grouped-query aware) whose probabilities pass through ``module.hook_pattern``.

    With grouped-query attention the query heads that share a key/value head are stacked along the
    sequence axis, so keys and values are used in place instead of being repeated per head.
    """
    b, n_heads, length, dim = query.shape
    groups = n_heads // key.shape[1]
    stacked = query.reshape(b, key.shape[1], groups * length, dim)
    scale = scaling if scaling is not None else dim**-0.5
    scores = (torch.matmul(stacked, key.transpose(2, 3)) * scale).view(b, n_heads, length, key.shape[-2])
    if attention_mask is not None:
        scores = scores + attention_mask[:, :, :, : key.shape[-2]]
    probs = torch.softmax(scores, dim=-1, dtype=torch.float32).to(query.dtype)
    hook = getattr(module, "hook_pattern", None)
    if hook is not None:
        probs = hook(probs)
    probs = nn.functional.dropout(probs, p=dropout, training=module.training)
    out = torch.matmul(probs.reshape(b, key.shape[1], groups * length, -1), value)
    return out.view(b, n_heads, length, dim).transpose(1, 2).contiguous(), probs


AttentionInterface.register(HOOKED_ATTENTION, _hooked_eager_attention)
ALL_MASK_ATTENTION_FUNCTIONS.register(HOOKED_ATTENTION, eager_mask)


_MISSING = object()


def transformers_configs(model: nn.Module) -> list[PretrainedConfig]:
    """Every ``transformers`` config reachable from ``model``: module configs and their sub-configs."""
    seen: dict[int, PretrainedConfig] = {}
    queue = [getattr(m, "config", None) for m in model.modules()]
    while queue:
        cfg = queue.pop()
        if not isinstance(cfg, PretrainedConfig) or id(cfg) in seen:
            continue
        seen[id(cfg)] = cfg
        queue.extend(getattr(cfg, key, None) for key in getattr(cfg, "sub_configs", {}) or {})
    return list(seen.values())


@contextlib.contextmanager
def attention_implementation(model: nn.Module, name: str = HOOKED_ATTENTION) -> Iterator[nn.Module]:
    """Switch every ``transformers`` model inside ``model`` to attention backend ``name``; restore on exit.

    ``name`` is ``"eager"``, ``"sdpa"``, any backend registered with ``transformers`` or
    ``"forensix"`` (eager with hookable patterns). Attention modules read
    ``config._attn_implementation`` on every forward, so the switch sets it on every reachable
    config (composites holding a vision encoder and a language model included) and writes the old
    values back, also when the body raises. A module holding no ``transformers`` model is left as is.

    Example:
        >>> from transformers import ViTConfig, ViTModel
        >>> vit = ViTModel(ViTConfig(image_size=16, patch_size=8, hidden_size=8, num_hidden_layers=1,
        ...                          num_attention_heads=2, intermediate_size=16))
        >>> before = vit.config._attn_implementation
        >>> with attention_implementation(vit, "eager"):
        ...     vit.config._attn_implementation
        'eager'
        >>> vit.config._attn_implementation == before
        True
    """
    if name != "eager" and name not in ALL_ATTENTION_FUNCTIONS:
        raise BadConfigError(f"attention implementation {name!r} is unknown; use 'eager', 'sdpa' or {HOOKED_ATTENTION!r}")
    configs = transformers_configs(model)  # none (a custom encoder): nothing to switch
    saved = [(cfg, cfg.__dict__.get("_attn_implementation_internal", _MISSING)) for cfg in configs]
    try:
        for cfg in configs:
            cfg._attn_implementation_internal = name
        yield model
    finally:
        for cfg, value in saved:
            if value is _MISSING:
                cfg.__dict__.pop("_attn_implementation_internal", None)
            else:
                cfg._attn_implementation_internal = value


class Cache(Mapping[str, torch.Tensor]):
    """Activations recorded by :func:`run_with_cache`, indexed by hook name.

    A hook point that fires several times in one call (the language model during generation)
    stores a list of tensors under its name; ``cache.stack(name)`` concatenates them.

    Example:
        >>> c = Cache({"a": torch.zeros(2)})
        >>> list(c), c["a"].shape
        (['a'], torch.Size([2]))
    """

    def __init__(self, store: dict[str, Any] | None = None) -> None:
        self._store: dict[str, Any] = dict(store or {})

    def __getitem__(self, name: str) -> Any:
        if name not in self._store:
            close = ", ".join(sorted(self._store)[:8])
            raise UnknownHookError(f"{name!r} is not in this cache; it holds {len(self)} names, e.g. {close}")
        return self._store[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._store)

    def __len__(self) -> int:
        return len(self._store)

    def _record(self, name: str, value: torch.Tensor) -> None:
        if name in self._store:
            previous = self._store[name]
            self._store[name] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            self._store[name] = value

    def stack(self, name: str, dim: int = -2) -> torch.Tensor:
        """All records of ``name`` concatenated along ``dim`` (e.g. generation steps)."""
        value = self[name]
        return torch.cat(value, dim=dim) if isinstance(value, list) else value

    def __repr__(self) -> str:
        return f"Cache({len(self)} tensors)"


def resolve_names(names_filter: Any, available: Iterable[str]) -> list[str]:
    """Hook names selected by a filter: a name, a glob (``"vision.blocks.*.out"``), a list, a predicate or None (all).

    Raises :class:`UnknownHookError` for a name or pattern that matches nothing.
    """
    available = list(available)
    if names_filter is None:
        return available
    if callable(names_filter):
        return [n for n in available if names_filter(n)]
    patterns = [names_filter] if isinstance(names_filter, str) else list(names_filter)
    chosen: list[str] = []
    for pattern in patterns:
        matches = [n for n in available if fnmatch.fnmatchcase(n, pattern)]
        if not matches:
            stem = re.split(r"[.*\[]", pattern)[0]
            near = [n for n in available if n.startswith(stem)][:6] or available[:6]
            raise UnknownHookError(
                f"unknown hook point {pattern!r}; near names: {', '.join(near)} "
                f"(model.hook_names() lists all {len(available)})"
            )
        chosen.extend(m for m in matches if m not in chosen)
    return chosen


@contextlib.contextmanager
def add_hooks(points: Mapping[str, HookPoint], fwd_hooks: Iterable[tuple[str, HookFn]]) -> Iterator[None]:
    """Attach ``(name_or_glob, fn)`` hooks to hook points for the duration of the context.

    Every handle is removed on exit, also when the body raises.
    """
    handles: list[torch.utils.hooks.RemovableHandle] = []
    try:
        for pattern, fn in fwd_hooks:
            for name in resolve_names(pattern, points):
                handles.append(points[name].add_hook(fn))
        yield
    finally:
        for handle in handles:
            handle.remove()


def caching_hooks(cache: Cache, names: Iterable[str], detach: bool = True) -> list[tuple[str, HookFn]]:
    """Hooks that record each named tensor into ``cache`` (detached unless ``detach=False``)."""

    def record(tensor: torch.Tensor, hook: HookPoint) -> None:
        cache._record(hook.name, tensor.detach() if detach else tensor)

    return [(name, record) for name in names]


def find_blocks(model: nn.Module) -> nn.ModuleList:
    """The list of transformer blocks of a ``transformers`` model (``layers`` or ``layer``)."""
    for name, module in model.named_modules():
        if isinstance(module, nn.ModuleList) and name.split(".")[-1] in {"layers", "layer"}:
            return module
    raise ValueError(f"{type(model).__name__}: no transformer block list found")


def _output_hook(point: HookPoint) -> Callable:
    def hook(module: nn.Module, inputs: tuple, output: Any) -> Any:
        if isinstance(output, tuple):
            return (point(output[0]), *output[1:])
        return point(output)

    return hook


def install_block_hooks(model: nn.Module, prefix: str) -> nn.ModuleList:
    """Give every block of a ``transformers`` model ``{prefix}.{i}.attn.pattern`` and ``{prefix}.{i}.out`` hook points.

    The pattern point sits on the block's attention module (read by the ``"forensix"`` attention
    backend); the output point is applied by a forward hook on the block. Returns the blocks.
    """
    blocks = find_blocks(model)
    for i, block in enumerate(blocks):
        attention = next((m for m in block.modules() if type(m).__name__.endswith("Attention")), None)
        if attention is None:
            raise ValueError(f"{type(block).__name__}: no attention module found")
        attention.hook_pattern = HookPoint(f"{prefix}.{i}.attn.pattern")
        block.hook_out = HookPoint(f"{prefix}.{i}.out")
        block.register_forward_hook(_output_hook(block.hook_out))
    return blocks


def add_output_hook_point(module: nn.Module, name: str) -> HookPoint:
    """Route ``module``'s output through a new hook point called ``name`` (kept on the module)."""
    point = HookPoint(name)
    module.hook_output = point
    module.register_forward_hook(_output_hook(point))
    return point


def name_hook_points(root: nn.Module) -> dict[str, HookPoint]:
    """Give every :class:`HookPoint` under ``root`` its name and return them by name (forward order of registration)."""
    points = {}
    for _, module in root.named_modules():
        if isinstance(module, HookPoint):
            if not module.name:
                raise ValueError("a HookPoint without a name was found; name it where it is created")
            points[module.name] = module
    return points


class HookedModule(nn.Module):
    """A root module whose :class:`HookPoint` s are reached by name, as TransformerLens's ``HookedRootModule``.

    A subclass builds its pieces and then calls :meth:`setup_hooks` (again after adding modules, e.g.
    adapters). ``_attention_roots`` names the ``transformers`` models whose ``attn.pattern`` points need
    hookable attention; ``_cached_call`` is what :meth:`run_with_cache` runs (the forward pass here).

    Example:
        >>> class Double(HookedModule):
        ...     def __init__(self) -> None:
        ...         super().__init__()
        ...         self.hook_in = HookPoint("double.in")
        ...         self.setup_hooks()
        ...     def forward(self, x: torch.Tensor) -> torch.Tensor:
        ...         return 2 * self.hook_in(x)
        >>> model = Double()
        >>> model.hook_names()
        ['double.in']
        >>> out, cache = model.run_with_cache(torch.ones(1))
        >>> out.item(), cache["double.in"].item()
        (2.0, 1.0)
        >>> with model.hooks([("double.*", lambda t, hook: t + 1)]):
        ...     model(torch.ones(1)).item()
        4.0
    """

    _hook_points: dict[str, HookPoint]

    def setup_hooks(self) -> None:
        """Name every hook point under this module; call it after building the module or adding pieces."""
        self._hook_points = name_hook_points(self)

    def hook_names(self) -> list[str]:
        """All hook point names, in data-flow order of registration."""
        return list(self._hook_points)

    def _attention_roots(self) -> dict[str, nn.Module]:
        """Hook-name prefix -> the ``transformers`` model whose attention patterns those hook points are."""
        return {}

    def _cached_call(self, inputs: Any, **kwargs: Any) -> Any:
        """What :meth:`run_with_cache` runs: the forward pass."""
        return self(inputs, **kwargs)

    @contextlib.contextmanager
    def hooks(self, fwd_hooks: Iterable[tuple[str, HookFn]] = ()) -> Iterator[HookedModule]:
        """Attach ``(name_or_glob, fn)`` hooks; attention-pattern hooks switch on hookable attention.

        Hooks are removed, and attention backends restored, on exit, also when the body raises.
        """
        fwd_hooks = list(fwd_hooks)
        names = [n for pattern, _ in fwd_hooks for n in resolve_names(pattern, self._hook_points)]
        with contextlib.ExitStack() as stack:
            for prefix, module in self._attention_roots().items():
                if any(n.startswith(prefix) and n.endswith("attn.pattern") for n in names):
                    stack.enter_context(attention_implementation(module, HOOKED_ATTENTION))
            stack.enter_context(add_hooks(self._hook_points, fwd_hooks))
            yield self

    def run_with_cache(self, inputs: Any, names_filter: Any = None, *, detach: bool = True, **kwargs: Any) -> tuple[Any, Cache]:
        """Run the module on ``inputs`` and record the selected hook points (detached unless ``detach=False``).

        ``names_filter``: a name, glob, list, predicate or None (all); ``kwargs`` go to the run.
        """
        cache = Cache()
        names = resolve_names(names_filter, self._hook_points)
        with self.hooks(caching_hooks(cache, names, detach=detach)):
            output = self._cached_call(inputs, **kwargs)
        return output, cache


__all__ = [
    "HOOKED_ATTENTION",
    "Cache",
    "HookPoint",
    "HookedModule",
    "add_hooks",
    "attention_implementation",
    "add_output_hook_point",
    "caching_hooks",
    "find_blocks",
    "install_block_hooks",
    "name_hook_points",
    "resolve_names",
    "transformers_configs",
]
