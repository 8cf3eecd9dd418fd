//! Binding a shard's listening socket: SO_REUSEPORT, so every shard of the
//! node listens on the same address and the kernel spreads connections
//! over them (and a shard's socket can leave and rejoin the group).

use std::net::SocketAddr;
use std::os::fd::OwnedFd;

use socket2::{Domain, Protocol, Socket, Type};

/// Pending-connection queue per listening socket (the kernel caps it at
/// net.core.somaxconn). Sized for a connection storm of a few thousand.
pub const LISTEN_BACKLOG: i32 = 4096;

/// A non-blocking listening socket on `addr`, in `addr`'s SO_REUSEPORT
/// group; with its bound address (port 0 resolved).
pub fn bind_reuseport(addr: SocketAddr) -> std::io::Result<(OwnedFd, SocketAddr)> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_port(true)?;
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.set_cloexec(true)?;
    socket.bind(&addr.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    let bound = socket
        .local_addr()?
        .as_socket()
        .ok_or_else(|| std::io::Error::other("listening socket has no inet address"))?;
    Ok((OwnedFd::from(socket), bound))
}

/// A duplicate of `fd` (close-on-exec): the same socket, another fd.
pub fn dup(fd: &OwnedFd) -> std::io::Result<OwnedFd> {
    fd.try_clone()
}
