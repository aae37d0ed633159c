// Command pause is the sandbox ("pause") container of the paasd test cluster:
// it holds a pod's namespaces and does nothing until SIGTERM or SIGINT.
// It is built CGO_ENABLED=0 into a FROM-scratch image by tests/cluster/up.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	// As PID 1 of the sandbox, reap any zombie reparented to us.
	signal.Notify(sigs, syscall.SIGCHLD)
	for s := range sigs {
		if s == syscall.SIGCHLD {
			for {
				pid, err := syscall.Wait4(-1, nil, syscall.WNOHANG, nil)
				if pid <= 0 || err != nil {
					break
				}
			}
			continue
		}
		os.Exit(0)
	}
}
