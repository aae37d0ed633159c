"""The builder: source → image (Docker engine) → revision; and git push deploys."""

from .builds import Build, Builder, QueueFull
from .stacks import Recipe, detect

__all__ = ["Build", "Builder", "QueueFull", "Recipe", "detect"]
