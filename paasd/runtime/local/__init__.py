"""What the local runtimes (process, docker) share: supervision, probing, log files."""

from .supervisor import Instance, LocalRuntime, SupervisionSettings, instance_id, pick_to_stop

__all__ = ["Instance", "LocalRuntime", "SupervisionSettings", "instance_id", "pick_to_stop"]
