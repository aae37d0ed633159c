"""The object kinds this build of paasd takes in an apply besides Services.

Each comes from the package that owns it (eventing's Brokers and Triggers, the TLS
package's DomainMappings, ...); the hub stores them and the API lists, shows,
exports and deletes them, whatever they are.
"""

from __future__ import annotations

from ..configdata import KINDS as CONFIGDATA_KINDS
from ..eventing.objects import KINDS as EVENTING_KINDS
from ..spec.objects import ObjectKinds, kinds_by_version
from ..tls.domainmapping import DOMAIN_MAPPING

BUILTIN_KINDS: ObjectKinds = {**kinds_by_version(DOMAIN_MAPPING), **EVENTING_KINDS,
                              **CONFIGDATA_KINDS}  # v1 Secret, v1 ConfigMap

__all__ = ["BUILTIN_KINDS"]
