// Package docker holds the Docker example: a Dockerfile whose image runs
// clusterrun as PID 1 (ENTRYPOINT ["clusterrun", "up"]) on this folder's
// cluster.hcl. There is no Go code to build here; pid1_test.go checks, in a
// PID namespace made with unshare(1), what running as a container's PID 1
// asks of clusterrun.
package docker
