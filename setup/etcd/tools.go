//go:build tools

// Package tools pins etcd's server, built by setup/steps/40-kubernetes.sh for the local Kubernetes control plane.
// etcd's own go.mod carries replace directives, so `go install ...@version` refuses it; this module builds it instead.
package tools

import _ "go.etcd.io/etcd/server/v3/etcdmain"
