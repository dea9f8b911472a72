"""The event loop the fleet's processes run: uvloop unless ``SWITCHYARD_FLEET_LOOP=asyncio``.

The fleet agent and the sample application both run on it. A bench's hundreds of instances share
the cores with the control plane that rolls them out, and the standard loop costs the sample app
~1.5 times the CPU per request (docs/serving.md). Without uvloop installed, the standard loop."""

from __future__ import annotations

import asyncio
import os


def use_fleet_loop() -> None:
    """Set the event loop policy before ``asyncio.run``."""
    if os.environ.get("SWITCHYARD_FLEET_LOOP", "uvloop") != "uvloop":
        return
    try:
        import uvloop
    except ImportError:
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
