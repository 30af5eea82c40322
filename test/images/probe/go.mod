// The probe the end-to-end tests run in pods (scripts/addon-build.sh, image localhost/k8s-on-k8s/probe).
// Standard library only: no requirements, no go.sum.
module k8s-on-k8s.test/probe

go 1.26.0
