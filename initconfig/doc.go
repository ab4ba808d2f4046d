// Package initconfig writes a commented cluster.hcl for clusterrun init: a
// small template, or a conversion of a Procfile or a pm2
// ecosystem file.
//
// A conversion keeps what the source says and nothing it does not: each
// app says in a comment where it came from, and what has no equivalent in
// cluster.hcl is returned in Result.Unmapped and listed in a comment at
// the end of the file, so that the command can also print it. The output
// is formatted by hclwrite and is meant to pass clusterrun check as it is
// on a machine that has the programs it runs.
package initconfig
