"""A module that takes three seconds to import, like a parser library on a busy machine."""

from __future__ import annotations

import time

time.sleep(3)
