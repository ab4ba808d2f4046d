package listeners

import (
	_ "embed"
	"strconv"
	"strings"

	"github.com/clusterrun/clusterrun/hclconfig"
)

// NodePreload is the script injected into Node instances with
// NODE_OPTIONS=--require: it maps listen(PORT) onto the inherited socket of
// the listener with that port and writes READY=1 to CLUSTERRUN_READY_FD
// once the server listens. It is inert in processes whose pid is not
// LISTEN_PID.
//
//go:embed node_preload.js
var NodePreload []byte

// PortMap returns CLUSTERRUN_LISTEN_PORTS for an instance receiving defs as
// fds 3, 4, …: "8080=3,9090=4", TCP listeners only.
func (s *Set) PortMap(defs []*hclconfig.Listener) string {
	var b strings.Builder
	for i, d := range defs {
		sk, ok := s.socks[keyOf(d)]
		if !ok || sk.port == 0 {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(sk.port))
		b.WriteByte('=')
		b.WriteString(strconv.Itoa(3 + i))
	}
	return b.String()
}
