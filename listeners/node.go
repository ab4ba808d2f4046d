package listeners

import _ "embed"

// NodePreload is the script injected into Node instances with
// NODE_OPTIONS=--require: it maps listen(PORT) onto the inherited socket of
// the listener with that port (CLUSTERRUN_LISTEN_PORTS, from Grant) and
// writes READY=1 to CLUSTERRUN_READY_FD once the server listens. It is
// inert in processes whose pid is not LISTEN_PID.
//
//go:embed node_preload.js
var NodePreload []byte
