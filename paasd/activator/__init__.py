"""The activator: holds requests for revisions with no free instance, Knative-style."""

from .balancer import Balancer
from .handler import Activator, Admission, Unavailable
from .throttler import QueueFull, Throttler

__all__ = ["Activator", "Admission", "Balancer", "QueueFull", "Throttler", "Unavailable"]
