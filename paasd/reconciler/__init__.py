"""The reconciler: desired state vs what the runtime reports, converged by actions."""
