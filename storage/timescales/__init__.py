"""The statutory timescales engine (moved; split next)."""

from storage.timescales.clocks import *  # noqa: F403
