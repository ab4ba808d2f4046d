// Package verify holds no code: its test decodes what clusterrun export
// renders for Kubernetes and Nomad into those projects' own API types,
// refusing unknown fields. It is a module of its own so that the main
// module does not depend on k8s.io/api or Nomad's api package; run it with
//
//	cd export/verify && go test ./...
package verify
