"""Secrets and ConfigMaps: the `v1` object kinds and what a revision gets from them.

`kinds.py` declares the two kinds (parsed, stored, Secrets always shown redacted);
`resolve.py` turns a template's references (`env[].valueFrom`, `envFrom`, volumes of
type secret, configMap and projected, `imagePullSecrets`) into values and files for
the local runtimes; `files.py` writes a volume's files for an instance (0700
directories, in place on change).
"""

from __future__ import annotations

from ..spec.objects import kinds_by_version
from .kinds import CONFIGMAP, SECRET, ConfigMapBody, SecretBody

KINDS = kinds_by_version(SECRET, CONFIGMAP)

__all__ = ["CONFIGMAP", "KINDS", "SECRET", "ConfigMapBody", "SecretBody"]
