"""The autoscaler: Knative's KPA decision, fed by the ingress' own counters."""
