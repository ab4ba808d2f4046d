// Package export renders a loaded cluster.hcl for the engine a team grows
// into: systemd units, Kubernetes manifests, a Nomad job, or a
// Procfile.
//
// It renders what the user wrote, not what this machine resolved: "max"
// instances stay a CPU count where the target can say so, env.X references
// stay references where the target can expand them, and paths are rebased
// from where cluster.hcl is here onto Options.Dir. hclconfig keeps the
// written forms beside the resolved values (App.Written, Config.WrittenEnv).
//
// Nothing is dropped in silence: whatever a target cannot express comes
// back as a Warning, one per app (or listener) and attribute, and the
// command prints each on stderr. Defaults that a target replaces with its
// own (clusterrun's restart backoff against the kubelet's, say) are not
// warned about; what the file sets and the target cannot keep is.
//
// Render is pure: it reads the Config and, for one warning, the env files
// the Config names. It writes nothing; the cli decides where files go.
package export
