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
