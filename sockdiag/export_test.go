package sockdiag

// PeerSocket exposes the client socket's inode to the tests, which
// check that the lookup found that very socket.
var PeerSocket = peerSocket
