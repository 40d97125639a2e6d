//go:build tools

// Package tools pins what scripts/cluster-api-crds.sh needs: controller-gen and the Go types of
// Cluster API's IPAM contract (ipam/v1beta2) and core Cluster (core/v1beta2). Nothing is built into
// kubipam; the generated CRDs are used by tests and `kubipam start --with-cluster-api`.
package tools

import (
	_ "sigs.k8s.io/cluster-api/api/core/v1beta2"
	_ "sigs.k8s.io/cluster-api/api/ipam/v1beta2"
	_ "sigs.k8s.io/controller-tools/cmd/controller-gen"
)
