"""The ingress: Host → route → revision → instance, on asyncio protocol callbacks.

`Ingress` implements the data-plane seam (`paasd.dataplane.DataPlane`):
HTTP/1.1 (httptools) and HTTP/2 (h2c, `h2`) from clients, to instances over
pooled HTTP/1.1 or h2c, WebSocket upgrades relayed, Knative's timeouts.
"""

from .server import DataPlaneError, Ingress

__all__ = ["DataPlaneError", "Ingress"]
