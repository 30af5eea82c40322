// Command etcd is the etcd server, built from go.etcd.io/etcd/server/v3 in the same module graph as
// k8s.io/kubernetes, so the etcd the tests run is the one the apiserver's client was built against.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
