//! Listening sockets, made with socket2 so that every worker can own one per address:
//! `SO_REUSEPORT` lets the kernel spread new connections over the workers' sockets.

use std::io;
use std::net::SocketAddr;

use socket2::{Domain, Protocol, Socket, Type};

/// Pending connections the kernel queues per socket.
const BACKLOG: i32 = 1024;

/// Binds one non-blocking listener on `addr`.
pub fn bind(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM.nonblocking(), Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_nodelay(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}

/// Binds `count` sockets on the same address, one per worker. When `addr` has port 0 the
/// first socket picks the port and the others reuse it, so all share one address.
pub fn bind_group(addr: SocketAddr, count: usize) -> io::Result<(SocketAddr, Vec<std::net::TcpListener>)> {
    let first = bind(addr)?;
    let actual = first.local_addr()?;
    let mut sockets = vec![first];
    for _ in 1..count {
        sockets.push(bind(actual)?);
    }
    Ok((actual, sockets))
}
