// Command pause is the sandbox ("pause") container of the worker hosts' pods: it holds the pod's
// namespaces open and does nothing else. It stands in for registry.k8s.io/pause, which cannot be
// pulled where the tests run; scripts/pause-image-build.sh packs it into an OCI image archive.
//
// As PID 1 of the pod's PID namespace (when the pod shares one) it reaps orphaned children, and it
// exits 0 on SIGINT or SIGTERM, as the upstream pause does (kubernetes/build/pause/linux/pause.c).
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "-v" {
		os.Stdout.WriteString("pause.go (k8s-on-k8s)\n")
		return
	}
	if os.Getpid() != 1 {
		os.Stderr.WriteString("Warning: pause should be the first process\n")
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	children := make(chan os.Signal, 16)
	signal.Notify(children, syscall.SIGCHLD)
	for {
		select {
		case <-stop:
			return
		case <-children:
			for {
				pid, err := syscall.Wait4(-1, nil, syscall.WNOHANG, nil)
				if pid <= 0 || err != nil {
					break
				}
			}
		}
	}
}
