"""The object kinds this build of paasd takes in an apply besides Services.

Each comes from the package that owns it (eventing's Brokers and Triggers, the TLS
package's DomainMappings, ...); the hub stores them and the API lists, shows,
exports and deletes them, whatever they are.
"""

from __future__ import annotations

from ..eventing.objects import KINDS as EVENTING_KINDS
from ..spec.objects import ObjectKinds, kinds_by_version
from ..tls.domainmapping import DOMAIN_MAPPING

BUILTIN_KINDS: ObjectKinds = {**kinds_by_version(DOMAIN_MAPPING), **EVENTING_KINDS}

__all__ = ["BUILTIN_KINDS"]
