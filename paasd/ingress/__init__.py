"""The ingress: Host → route → revision → instance, proxied over pooled HTTP/1.1.

`Ingress` implements the data-plane seam (`paasd.dataplane.DataPlane`).
"""

from .server import Ingress

__all__ = ["Ingress"]
