"""Containers: ``Sequential`` and ``ModuleList`` (children named ``"0"``, ``"1"``... as PyTorch)."""

from __future__ import annotations

from collections import OrderedDict
from typing import Iterable, Iterator

from .module import Module


class _Indexed(Module):
    """What Sequential and ModuleList share: children in order, appended under their position."""

    def append(self, module: Module):
        self.add_module(str(len(self._modules)), module)
        return self

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def _slice(self, index: slice):
        raise NotImplementedError

    def __getitem__(self, index):
        if isinstance(index, slice):
            return self._slice(index)
        items = list(self._modules.values())
        if not -len(items) <= index < len(items):
            raise IndexError(f"index {index} is out of range for {type(self).__name__} of length {len(items)}")
        return items[index]


class Sequential(_Indexed):
    """Modules applied in order; built from modules or from an ``OrderedDict`` of named modules.

    >>> import semirad as sr
    >>> net = sr.nn.Sequential(sr.nn.Linear(4, 8), sr.nn.ReLU(), sr.nn.Linear(8, 2))
    >>> list(net.state_dict())
    ['0.weight', '0.bias', '2.weight', '2.bias']
    """

    def __init__(self, *modules):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], OrderedDict):
            for name, module in modules[0].items():
                self.add_module(name, module)
        else:
            for i, module in enumerate(modules):
                self.add_module(str(i), module)

    def forward(self, input):
        for module in self._modules.values():
            input = module(input)
        return input

    def _slice(self, index: slice) -> Sequential:
        return Sequential(OrderedDict(list(self._modules.items())[index]))


class ModuleList(_Indexed):
    """A list of modules whose parameters are registered (names ``"0.weight"``...)."""

    def __init__(self, modules: Iterable[Module] | None = None):
        super().__init__()
        for module in modules or ():
            self.append(module)

    def extend(self, modules: Iterable[Module]) -> ModuleList:
        for module in modules:
            self.append(module)
        return self

    def _slice(self, index: slice) -> ModuleList:
        return ModuleList(list(self._modules.values())[index])

    def forward(self, *args, **kwargs):
        raise NotImplementedError("ModuleList has no forward(); iterate over its modules")


class ModuleDict(Module):
    """A dict of modules whose parameters are registered under their keys (``"encoder.weight"``...),
    in insertion order, with ``dict``'s methods as ``torch.nn.ModuleDict``.

    >>> import semirad as sr
    >>> heads = sr.nn.ModuleDict({"a": sr.nn.Linear(2, 3), "b": sr.nn.Linear(2, 1)})
    >>> heads["c"] = sr.nn.Identity()
    >>> list(heads), "a" in heads, len(heads), list(heads.state_dict())
    (['a', 'b', 'c'], True, 3, ['a.weight', 'a.bias', 'b.weight', 'b.bias'])
    """

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.update(modules)

    def __getitem__(self, key: str) -> Module:
        return self._modules[key]

    def __setitem__(self, key: str, module: Module) -> None:
        if not isinstance(key, str):
            raise TypeError(f"ModuleDict keys must be strings, got {type(key).__name__}")
        self.add_module(key, module)

    def __delitem__(self, key: str) -> None:
        del self._modules[key]
        self.__dict__.pop("_child_names", None)

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[str]:
        return iter(self._modules)

    def __contains__(self, key: str) -> bool:
        return key in self._modules

    def clear(self) -> None:
        """Remove every module."""
        self._modules.clear()
        self.__dict__.pop("_child_names", None)

    def pop(self, key: str) -> Module:
        """Remove ``key`` and return its module."""
        module = self[key]
        del self[key]
        return module

    def keys(self):
        """The keys, in insertion order."""
        return self._modules.keys()

    def items(self):
        """``(key, module)`` pairs, in insertion order."""
        return self._modules.items()

    def values(self):
        """The modules, in insertion order."""
        return self._modules.values()

    def update(self, modules) -> None:
        """Add (or replace) modules from a mapping or an iterable of ``(key, module)`` pairs."""
        if isinstance(modules, Module) and not isinstance(modules, ModuleDict):
            raise TypeError(f"ModuleDict.update should be called with a mapping or an iterable of key/module "
                            f"pairs, but got {type(modules).__name__}")  # fmt: skip
        if hasattr(modules, "items"):
            pairs = list(modules.items())
        else:
            pairs = []
            for i, pair in enumerate(modules):
                if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                    raise ValueError(f"ModuleDict.update: element #{i} of the iterable is not a (key, module) pair: "
                                     f"{pair!r}")  # fmt: skip
                pairs.append(tuple(pair))
        for key, module in pairs:
            self[key] = module

    def forward(self, *args, **kwargs):
        raise NotImplementedError("ModuleDict has no forward(); call its modules")
