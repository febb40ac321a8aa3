// Package sockdiag finds which local user owns the other end of a TCP
// connection, through the kernel's sock_diag netlink interface
// (github.com/vishvananda/netlink). Loopback clients all share one
// address, so the address says nothing about who connected; the owner
// of the client's socket does.
package sockdiag

import (
	"fmt"
	"net"

	"github.com/vishvananda/netlink"
)

// PeerUID returns the uid owning the client socket of conn, a TCP
// connection accepted from a local process. It fails for a peer on
// another host, and where netlink sockets are not allowed (systemd's
// RestrictAddressFamilies without AF_NETLINK).
func PeerUID(conn net.Conn) (uint32, error) {
	// The client's socket sees conn's ends the other way round.
	s, err := netlink.SocketGet(conn.RemoteAddr(), conn.LocalAddr())
	if err != nil {
		return 0, fmt.Errorf("sock_diag lookup of %s: %w", conn.RemoteAddr(), err)
	}
	return s.UID, nil
}
