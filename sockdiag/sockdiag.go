// Package sockdiag finds which local user owns the other end of a TCP
// connection, through the kernel's sock_diag netlink interface
// (github.com/vishvananda/netlink's request plumbing). Loopback clients
// all share one address, so the address says nothing about who
// connected; the owner of the client's socket does.
package sockdiag

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// PeerUID returns the uid owning the client socket of conn. local is
// false, with no error, when the client's address is not this host's
// (by the kernel's routing): it is on another host, or in another
// network namespace (a container). A local client whose connected
// socket cannot be found (it has closed or reset) is an error, as is a
// failed lookup (systemd's RestrictAddressFamilies without AF_NETLINK).
//
// The lookup is exact: the kernel finds the one socket with conn's four
// addresses and ports. (A dump, as netlink.SocketGet sends, is filtered
// by the ports alone, and any local user can bind another 127.0.0.0/8
// address with the same port to be taken for Asterisk.) That lookup
// does not see a socket bound to a device (SO_BINDTODEVICE, open to any
// user, or a link-local address with its zone), so when it finds
// nothing, the whole table is searched for exactly that socket before
// the client is refused.
func PeerUID(conn net.Conn) (uid uint32, local bool, err error) {
	uid, _, local, err = peerSocket(conn)
	return uid, local, err
}

// peerSocket returns the owner and inode of conn's client socket.
func peerSocket(conn net.Conn) (uid, inode uint32, local bool, err error) {
	peer, err := netip.ParseAddrPort(conn.RemoteAddr().String())
	if err != nil {
		return 0, 0, false, fmt.Errorf("sock_diag: peer %s: %w", conn.RemoteAddr(), err)
	}
	me, err := netip.ParseAddrPort(conn.LocalAddr().String())
	if err != nil {
		return 0, 0, false, fmt.Errorf("sock_diag: local %s: %w", conn.LocalAddr(), err)
	}
	// The client's socket sees conn's ends the other way round. An IPv4
	// client of a dual-stack listener has an IPv4 socket, or an IPv6 one
	// with mapped addresses.
	src, dst := netip.AddrPortFrom(peer.Addr().WithZone("").Unmap(), peer.Port()), netip.AddrPortFrom(me.Addr().WithZone("").Unmap(), me.Port())
	// Only a client from one of this host's addresses can have a socket
	// here: for any other, the handshake's SYN-ACK left the host. Such a
	// client is not looked up at all, so a local user cannot make it
	// look local (an IPV6_FREEBIND socket bound to the remote's address
	// and port, stuck in SYN-SENT, would be found and refused).
	if !src.Addr().IsLoopback() {
		ours, err := hostAddress(src.Addr(), peer.Addr().Zone(), dst.Addr())
		if err != nil {
			return 0, 0, true, fmt.Errorf("sock_diag: %w", err)
		}
		if !ours {
			return 0, 0, false, nil
		}
	}
	tries := [][2]netip.AddrPort{{src, dst}}
	if src.Addr().Is4() {
		mapped := func(a netip.AddrPort) netip.AddrPort {
			return netip.AddrPortFrom(netip.AddrFrom16(a.Addr().As16()), a.Port())
		}
		tries = append(tries, [2]netip.AddrPort{mapped(src), mapped(dst)})
	}
	for _, t := range tries {
		uid, inode, err := lookup(t[0], t[1])
		switch {
		case err == nil:
			return uid, inode, true, nil
		case errors.Is(err, errNotConnected):
			return 0, 0, true, fmt.Errorf("sock_diag lookup of %s: %w", conn.RemoteAddr(), err)
		case !errors.Is(err, unix.ENOENT) && !errors.Is(err, errOtherSocket):
			return 0, 0, false, fmt.Errorf("sock_diag lookup of %s: %w", conn.RemoteAddr(), err)
		}
	}
	uid, inode, local, err = search(src, dst)
	if err != nil || local {
		return uid, inode, local, err
	}
	// Gone already (a client that sent its request and reset at once).
	return 0, 0, true, fmt.Errorf("sock_diag: %s is this host's address, but no connected socket is the client's: %w", src.Addr(), errNotConnected)
}

// hostAddress reports whether the kernel routes ip to this host itself:
// its routing also knows the addresses no interface lists (IPv6
// anycast). The lookup is the one the reply to the client takes: from
// our address, out of the peer's interface for a link-local peer (two
// links may carry the same link-local address). No route back means a
// remote client under policy routing, not a local one.
func hostAddress(ip netip.Addr, zone string, from netip.Addr) (bool, error) {
	opts := &netlink.RouteGetOptions{SrcAddr: net.IP(from.AsSlice()), Oif: zone}
	routes, err := netlink.RouteGetWithOptions(net.IP(ip.AsSlice()), opts)
	if errors.Is(err, unix.ENETUNREACH) || errors.Is(err, unix.EHOSTUNREACH) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("route lookup of %s: %w", ip, err)
	}
	for _, r := range routes {
		if r.Type == unix.RTN_LOCAL || r.Type == unix.RTN_ANYCAST {
			return true, nil
		}
	}
	return false, nil
}

// search looks through every TCP socket on the host for the one from
// src to dst (either family, IPv4 possibly mapped).
func search(src, dst netip.AddrPort) (uid, inode uint32, local bool, err error) {
	for _, family := range []uint8{unix.AF_INET, unix.AF_INET6} {
		socks, err := netlink.SocketDiagTCP(family)
		if errors.Is(err, netlink.ErrDumpInterrupted) {
			socks, err = netlink.SocketDiagTCP(family) // the table changed mid-dump: once more
		}
		if err != nil {
			return 0, 0, false, fmt.Errorf("sock_diag search for %s: %w", src, err)
		}
		for _, s := range socks {
			if addrPort(s.ID.Source, s.ID.SourcePort) != src || addrPort(s.ID.Destination, s.ID.DestinationPort) != dst {
				continue
			}
			if s.State != tcpEstablished || s.INode == 0 {
				return 0, 0, true, fmt.Errorf("sock_diag search for %s: %w (TCP state %d, inode %d)", src, errNotConnected, s.State, s.INode)
			}
			return s.UID, s.INode, true, nil
		}
	}
	return 0, 0, false, nil
}

func addrPort(ip net.IP, port uint16) netip.AddrPort {
	a, _ := netip.AddrFromSlice(ip)
	return netip.AddrPortFrom(a.Unmap(), port)
}

var (
	errNotConnected = errors.New("the client's socket is not connected")
	errOtherSocket  = errors.New("the kernel answered with another socket")
)

// lookup asks for the TCP socket from src to dst (struct
// inet_diag_req_v2, without NLM_F_DUMP) and returns its owner and inode.
func lookup(src, dst netip.AddrPort) (uint32, uint32, error) {
	family := uint8(unix.AF_INET6)
	if src.Addr().Is4() {
		family = unix.AF_INET
	}
	req := nl.NewNetlinkRequest(nl.SOCK_DIAG_BY_FAMILY, 0)
	req.AddData(&diagRequest{family: family, src: src, dst: dst})
	msgs, err := req.Execute(unix.NETLINK_INET_DIAG, nl.SOCK_DIAG_BY_FAMILY)
	if err != nil {
		return 0, 0, err
	}
	if len(msgs) != 1 {
		return 0, 0, fmt.Errorf("%d answers, want one", len(msgs))
	}
	return parseReply(msgs[0], src, dst)
}

// diagRequest is struct inet_diag_req_v2 for one TCP socket.
type diagRequest struct {
	family   uint8
	src, dst netip.AddrPort
}

const sizeofRequest = 56 // family, protocol, ext, pad, states, inet_diag_sockid (48)

func (r *diagRequest) Len() int { return sizeofRequest }

func (r *diagRequest) Serialize() []byte {
	b := make([]byte, sizeofRequest)
	b[0], b[1] = r.family, unix.IPPROTO_TCP
	binary.NativeEndian.PutUint32(b[4:], ^uint32(0)) // any state
	putSockID(b[8:], r.src, r.dst)
	binary.NativeEndian.PutUint32(b[48:], nl.TCPDIAG_NOCOOKIE)
	binary.NativeEndian.PutUint32(b[52:], nl.TCPDIAG_NOCOOKIE)
	return b
}

// putSockID writes inet_diag_sockid's ports (big-endian) and addresses
// (IPv4 in the first four bytes of sixteen).
func putSockID(b []byte, src, dst netip.AddrPort) {
	binary.BigEndian.PutUint16(b[0:], src.Port())
	binary.BigEndian.PutUint16(b[2:], dst.Port())
	putAddr(b[4:20], src.Addr())
	putAddr(b[20:36], dst.Addr())
}

func putAddr(b []byte, a netip.Addr) {
	if a.Is4() {
		v := a.As4()
		copy(b, v[:])
		return
	}
	v := a.As16()
	copy(b, v[:])
}

// parseReply reads struct inet_diag_msg: family, state, timer, retrans,
// inet_diag_sockid (48 bytes), expires, rqueue, wqueue, uid, inode. The
// socket must be the one asked for.
//
// Only a connected socket with an owner counts: a client that wrote and
// closed at once leaves a time-wait entry the kernel reports as uid 0
// with no inode, and with no connected socket on the client's port the
// kernel answers with a listening one.
func parseReply(m []byte, src, dst netip.AddrPort) (uid, inode uint32, err error) {
	const sizeofMsg = 72
	if len(m) < sizeofMsg {
		return 0, 0, fmt.Errorf("short inet_diag_msg (%d bytes)", len(m))
	}
	want := make([]byte, 36)
	putSockID(want, src, dst)
	if string(m[4:40]) != string(want) {
		return 0, 0, errOtherSocket
	}
	uid, inode = binary.NativeEndian.Uint32(m[64:]), binary.NativeEndian.Uint32(m[68:])
	if state := m[1]; state != tcpEstablished || inode == 0 {
		return 0, 0, fmt.Errorf("%w (TCP state %d, inode %d)", errNotConnected, state, inode)
	}
	return uid, inode, nil
}

// tcpEstablished is TCP_ESTABLISHED in inet_diag_msg's idiag_state.
const tcpEstablished = 1
