"""A WhatsApp Cloud API simulator: a real HTTP server speaking the real wire format.

The default provider in development, and the truth tests and benchmarks compare the
service's numbers with (`GET /_simulator/ledger`). Seeded: every message's outcome is a
function of the seed and its idempotency key, whatever the order or concurrency.
"""

from simulator.app import create_simulator_app
from simulator.config import SimulatorConfig
from simulator.engine import Simulator
from simulator.ledger import Ledger

__all__ = ["Ledger", "Simulator", "SimulatorConfig", "create_simulator_app"]
