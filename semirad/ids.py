"""Element ids: what a backpointer holds besides the global id of a vertex (lowest layer: the
compiled kernels use them too)."""

from __future__ import annotations

import numpy as np

#: backpointer of an element that has no path to the output (sorts after every real id)
NO_PATH = np.iinfo(np.int64).max
#: backpointer stored at the output itself: the path ends here
END = -1
