// The agent is a program, `k8s-join` (src/bin/k8s-join.ts), not a library: no other package imports
// it (the integration tests run the built executable), so nothing is exported. Export a name here
// only when another package needs it.
export {};
