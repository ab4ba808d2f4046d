// Package docs holds clusterrun's user documentation, in Markdown. There
// is no code here: docs_test.go checks config.md against the schema of
// cluster.hcl, so that a new block or attribute cannot go undocumented.
package docs
