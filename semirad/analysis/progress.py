"""A progress bar: tqdm if installed, else rich, else a plain one on stderr (no dependency)."""

from __future__ import annotations

import sys
import time


def progress_bar(total: int | None = None, desc: str = "", enable: bool = True, backend: str = "auto", file=None):
    """A progress bar with ``update(n=1)``, ``set_postfix(**values)`` and ``close()`` (also a
    context manager).

    ``backend``: ``"auto"`` (tqdm, then rich, then plain), ``"tqdm"``, ``"rich"``, ``"plain"`` or
    ``"none"``; ``enable=False`` is ``"none"``. The plain bar redraws one line on a terminal and
    prints a line every 10 % otherwise (logs, CI).

    >>> with progress_bar(3, "work", backend="none") as bar:
    ...     for _ in range(3):
    ...         bar.update()
    >>> bar.n
    3
    """
    if not enable or backend == "none":
        return _Silent(total)
    if backend in ("auto", "tqdm"):
        try:
            from tqdm.auto import tqdm

            return _Tqdm(tqdm(total=total, desc=desc, file=file, dynamic_ncols=True, leave=True))
        except ImportError:
            if backend == "tqdm":
                raise
    if backend in ("auto", "rich"):
        try:
            return _Rich(total, desc)
        except ImportError:
            if backend == "rich":
                raise
    if backend not in ("auto", "plain"):
        raise ValueError(f"unknown progress backend {backend!r}")
    return _Plain(total, desc, file)


class _Bar:
    def __init__(self, total):
        self.total = total
        self.n = 0
        self.postfix: dict = {}

    def update(self, n: int = 1) -> None:
        self.n += n

    def set_postfix(self, **values) -> None:
        self.postfix = values

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


class _Silent(_Bar):
    pass


class _Tqdm(_Bar):
    def __init__(self, bar):
        super().__init__(bar.total)
        self.bar = bar

    def update(self, n: int = 1) -> None:
        super().update(n)
        self.bar.update(n)

    def set_postfix(self, **values) -> None:
        super().set_postfix(**values)
        self.bar.set_postfix({k: _short(v) for k, v in values.items()}, refresh=False)

    def close(self) -> None:
        self.bar.close()


class _Rich(_Bar):
    def __init__(self, total, desc):
        from rich.progress import Progress

        super().__init__(total)
        self.desc = desc
        self.progress = Progress(transient=False)
        self.progress.start()
        self.task = self.progress.add_task(desc, total=total)

    def update(self, n: int = 1) -> None:
        super().update(n)
        self.progress.update(self.task, advance=n)

    def set_postfix(self, **values) -> None:
        super().set_postfix(**values)
        extra = " ".join(f"{k}={_short(v)}" for k, v in values.items())
        self.progress.update(self.task, description=f"{self.desc} {extra}".strip())

    def close(self) -> None:
        self.progress.stop()


class _Plain(_Bar):
    def __init__(self, total, desc, file=None):
        super().__init__(total)
        self.desc = desc
        self.file = file or sys.stderr
        self.tty = bool(getattr(self.file, "isatty", lambda: False)())
        self.start = time.perf_counter()
        self._last_decile = -1
        self._closed = False

    def _line(self) -> str:
        elapsed = time.perf_counter() - self.start
        if self.total:
            frac = min(1.0, self.n / self.total)
            filled = int(round(24 * frac))
            bar = "[" + "#" * filled + "-" * (24 - filled) + "]"
            left = elapsed / self.n * (self.total - self.n) if self.n else 0.0
            head = f"{self.desc} {bar} {self.n}/{self.total} {elapsed:.0f}s<{left:.0f}s"
        else:
            head = f"{self.desc} {self.n} {elapsed:.0f}s"
        extra = " ".join(f"{k}={_short(v)}" for k, v in self.postfix.items())
        return f"{head} {extra}".rstrip()

    def update(self, n: int = 1) -> None:
        super().update(n)
        if self.tty:
            self.file.write("\r" + self._line() + "\033[K")
            self.file.flush()
            return
        decile = int(10 * self.n / self.total) if self.total else self.n // 100
        if decile != self._last_decile:
            self._last_decile = decile
            print(self._line(), file=self.file, flush=True)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.tty:
            self.file.write("\r" + self._line() + "\033[K\n")
            self.file.flush()


def _short(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
