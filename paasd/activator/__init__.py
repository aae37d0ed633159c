"""The activator: holds requests for revisions with no free instance, Knative-style."""
