//! Stopping a node, as an orchestrator or an operator does it: SIGINT (like
//! SIGTERM, `server.rs`) closes every client with 1001 and exits 0;
//! `--shutdown-timeout-ms` cuts the connections still closing when it
//! passes; a second signal exits at once (status 130).

mod common;

use std::time::Duration;

use common::*;
use shardline::protocol::ClientEncoder;

/// Bound on a graceful stop here (the default --shutdown-timeout-ms is 5 s,
/// and a fleet node may wait 5 s for the directory).
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// A seated player on a raw socket that will never answer anything (not
/// even the close frame): its connection can only end by the server's
/// bounds.
fn mute_player(server: &Server, instance: &str) -> RawWs {
    let mut enc = ClientEncoder::new();
    let mut first = masked_frame(OP_BINARY, enc.hello("mute", None));
    first.extend(masked_frame(OP_BINARY, enc.join(Some(instance), true)));
    let mut raw = RawWs::upgrade(server.addr(), &format!("/play?instance={instance}"), &first);
    // Joined: seated. Nothing is read after this.
    let deadline = std::time::Instant::now() + RECV_TIMEOUT;
    loop {
        let (op, payload) = raw.read_frame(deadline).expect("Welcome and Joined");
        if op == OP_BINARY
            && matches!(
                shardline::protocol::decode_server(&payload),
                Ok(shardline::protocol::ServerMsg::Joined { .. })
            )
        {
            return raw;
        }
    }
}

/// `cut_connections=N` of the node's final log line.
fn cut_connections(server: &Server) -> usize {
    let log = server.log();
    let line = log
        .lines()
        .find(|l| l.contains("shardline stopped"))
        .unwrap_or_else(|| panic!("no 'shardline stopped' line:\n{log}"));
    line.split_whitespace()
        .find_map(|w| w.strip_prefix("cut_connections="))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no cut_connections in {line:?}"))
}

#[test]
fn sigint_closes_everyone_with_1001_and_exits_0() {
    let mut server = Server::start(&["--tick-rate", "30"]);
    let (mut a, _) = player(&server.play_url("interrupted"), "a");
    a.join(Some("interrupted"));
    a.next_update();
    server.signal(libc::SIGINT);
    assert_eq!(a.expect_close().0, 1001);
    let status = server.wait_exit(STOP_TIMEOUT);
    assert_eq!(status.code(), Some(0), "{}", server.log());
    assert_eq!(cut_connections(&server), 0);
}

#[test]
fn shutdown_timeout_cuts_the_connections_still_closing() {
    // A player who never answers the close frame: the server waits for its
    // reply (at most 1 s per connection), unless --shutdown-timeout-ms is
    // shorter: then the connection is cut, and the stop says so.
    for (timeout_ms, cut) in [("200", 1), ("5000", 0)] {
        let mut server = Server::start(&["--shutdown-timeout-ms", timeout_ms]);
        let _mute = mute_player(&server, "deaf");
        server.sigterm();
        let status = server.wait_exit(STOP_TIMEOUT);
        assert!(status.success(), "{}", server.log());
        assert_eq!(
            cut_connections(&server),
            cut,
            "--shutdown-timeout-ms {timeout_ms}:\n{}",
            server.log()
        );
    }
}

#[test]
fn a_second_signal_exits_at_once() {
    // A player who never answers the close frame keeps the graceful stop
    // busy for a second (the wait for its close reply); the second signal,
    // sent right behind the first, lands in it.
    let mut server = Server::start(&["--shutdown-timeout-ms", "60000"]);
    let _mute = mute_player(&server, "deaf");
    server.sigterm();
    server.signal(libc::SIGINT);
    let status = server.wait_exit(STOP_TIMEOUT);
    assert_eq!(status.code(), Some(130), "{}", server.log());
    assert!(server.log_contains("shutdown requested"));
    assert!(server.log_contains("second signal: exiting now"));
    assert!(
        !server.log_contains("shardline stopped"),
        "the graceful stop did not finish"
    );
}
