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

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// PeerUID returns the uid owning the client socket of conn, a TCP
// connection from a process on this host. It fails when the kernel has
// no such connected socket (a client that has already closed, one on
// another host, one bound to a device), and where netlink sockets are
// not allowed (systemd's RestrictAddressFamilies without AF_NETLINK).
//
// The lookup is exact: the kernel finds the one socket with conn's four
// addresses and ports. (A dump, as netlink.SocketGet sends, is filtered
// by the ports alone, and any local user can bind another 127.0.0.0/8
// address with the same port to be taken for Asterisk.)
func PeerUID(conn net.Conn) (uint32, error) {
	uid, _, err := peerSocket(conn)
	return uid, err
}

// peerSocket returns the owner and inode of conn's client socket.
func peerSocket(conn net.Conn) (uid, inode uint32, err error) {
	peer, err := netip.ParseAddrPort(conn.RemoteAddr().String())
	if err != nil {
		return 0, 0, fmt.Errorf("sock_diag: peer %s: %w", conn.RemoteAddr(), err)
	}
	local, err := netip.ParseAddrPort(conn.LocalAddr().String())
	if err != nil {
		return 0, 0, fmt.Errorf("sock_diag: local %s: %w", conn.LocalAddr(), err)
	}
	// The client's socket sees conn's ends the other way round. An IPv4
	// client of a dual-stack listener has an IPv4 socket, or an IPv6 one
	// with mapped addresses.
	src, dst := netip.AddrPortFrom(peer.Addr().Unmap(), peer.Port()), netip.AddrPortFrom(local.Addr().Unmap(), local.Port())
	uid, inode, err = lookup(src, dst)
	if err != nil && src.Addr().Is4() {
		mapped := func(a netip.AddrPort) netip.AddrPort {
			return netip.AddrPortFrom(netip.AddrFrom16(a.Addr().As16()), a.Port())
		}
		if uid6, inode6, err6 := lookup(mapped(src), mapped(dst)); err6 == nil {
			return uid6, inode6, nil
		}
	}
	if err != nil {
		return 0, 0, fmt.Errorf("sock_diag lookup of %s: %w", conn.RemoteAddr(), err)
	}
	return uid, inode, nil
}

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
		return 0, 0, errors.New("the kernel answered with another socket")
	}
	uid, inode = binary.NativeEndian.Uint32(m[64:]), binary.NativeEndian.Uint32(m[68:])
	if state := m[1]; state != tcpEstablished || inode == 0 {
		return 0, 0, fmt.Errorf("the client's socket is not connected (TCP state %d, inode %d)", state, inode)
	}
	return uid, inode, nil
}

// tcpEstablished is TCP_ESTABLISHED in inet_diag_msg's idiag_state.
const tcpEstablished = 1
