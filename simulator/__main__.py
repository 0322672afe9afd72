"""`python -m simulator`: serve the simulator configured from SIMULATOR_* variables.

SIMULATOR_HOST (127.0.0.1) and SIMULATOR_PORT (9000, as `campaigns simulator`) say where; see simulator/config.py
for the behaviour variables.
"""

from __future__ import annotations

import os

import uvicorn

from simulator.app import create_simulator_app
from simulator.config import SimulatorConfig


def main() -> None:
    app = create_simulator_app(SimulatorConfig.from_env())
    host = os.environ.get("SIMULATOR_HOST", "127.0.0.1")
    port = int(os.environ.get("SIMULATOR_PORT", "9000"))
    # No access log: it would cost more than the simulated request itself.
    uvicorn.run(app, host=host, port=port, access_log=False, log_level="warning")


if __name__ == "__main__":
    main()
