"""Knative's HPA class on the local runtimes: the policy from annotations, and the
HorizontalPodAutoscaler's decision on measured usage (pure)."""

from __future__ import annotations

import pytest

from paasd.autoscaler.hpa import HpaPolicy, HpaState, hpa_policy
from paasd.errors import InvalidSpec
from paasd.spec.knative import service_from_document
from paasd.spec.model import Container, Resources, Template
from paasd.spec.yamlpos import load_documents

HPA = (("autoscaling.knative.dev/class", "hpa.autoscaling.knative.dev"),)
CPU = HpaPolicy("cpu", 50.0, 0.2, 60.0)


def test_the_policy_reads_the_class_metric_target_and_request() -> None:
    t = Template(Container(image="x", resources=Resources(requests=(("cpu", "200m"),))),
                 annotations=(*HPA, ("autoscaling.knative.dev/target", "50")))
    assert hpa_policy(t) == HpaPolicy("cpu", 50.0, 0.2, 300.0)
    assert hpa_policy(Template(Container(image="x"))) is None  # KPA, the default


def test_cpu_usage_scales_up_as_the_hpa_does_and_never_to_zero() -> None:
    state = HpaState()
    state.observe(0.0, 10.0, 0, 2, CPU)  # a first reading: no rate yet
    assert state.decide(0.0, 2, CPU, 0, 0) == (2, "hpa: no usage measured yet")
    state.observe(2.0, 10.8, 0, 2, CPU)  # 0.8 CPU s in 2 s: 0.2 cores per instance
    want, why = state.decide(2.0, 2, CPU, 0, 10)
    assert state.current == pytest.approx(100.0)  # 0.2 cores of a 0.2-core request
    assert want == 4 and "cpu 100% per instance, target 50%" in why
    assert state.decide(2.0, 2, CPU, 0, 3)[0] == 3  # max-scale caps it
    idle = HpaState()
    idle.observe(0.0, 1.0, 0, 3, CPU)
    idle.observe(1.0, 1.0, 0, 3, CPU)
    assert idle.decide(1.0, 3, CPU, 0, 0)[0] == 1  # no usage: down to one, not zero


def test_a_scale_down_waits_for_the_stabilization_window() -> None:
    state = HpaState()
    state.current = 100.0
    assert state.decide(0.0, 2, CPU, 0, 0)[0] == 4
    state.current = 10.0
    assert state.decide(30.0, 4, CPU, 0, 0)[0] == 4  # the window still recommends 4
    assert state.decide(61.0, 4, CPU, 0, 0)[0] == 1


def test_within_tolerance_nothing_changes() -> None:
    state = HpaState()
    state.current = 54.0  # 8 % over the target
    assert state.decide(0.0, 3, CPU, 0, 0)[0] == 3


def doc(annotations: str, resources: str = "") -> str:
    return ("apiVersion: serving.knative.dev/v1\nkind: Service\nmetadata: {name: web}\n"
            "spec:\n  template:\n    metadata:\n      annotations:\n" + annotations +
            "    spec:\n      containers:\n        - image: x\n" + resources)


def test_cpu_needs_a_cpu_request_and_memory_a_target() -> None:
    hpa = "        autoscaling.knative.dev/class: hpa.autoscaling.knative.dev\n"
    with pytest.raises(InvalidSpec, match=r"resources\.requests\.cpu: the HPA class"):
        service_from_document(load_documents(doc(hpa))[0])
    with pytest.raises(InvalidSpec, match=r"metric memory needs autoscaling\.knative\.dev/target"):
        service_from_document(load_documents(
            doc(hpa + "        autoscaling.knative.dev/metric: memory\n"))[0])
