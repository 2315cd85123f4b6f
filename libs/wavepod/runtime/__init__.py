"""wavepod's shared service runtime (see server.py for what a service gets)."""

from wavepod.runtime.server import Registration, RunningServer, ServiceApp, run, start_server
from wavepod.runtime.settings import RegistryClientSettings, ServiceSettings, load_settings
from wavepod.runtime.unbuilt import unbuilt

__all__ = [
    "Registration",
    "RegistryClientSettings",
    "RunningServer",
    "ServiceApp",
    "ServiceSettings",
    "load_settings",
    "run",
    "start_server",
    "unbuilt",
]
