"""paasd: a single-node, Knative-style serverless PaaS daemon."""

__version__ = "0.1.0"
