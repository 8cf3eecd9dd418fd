//! Join authentication against a real server: with `--join-secret`, Hello
//! must carry a ticket signed with that secret, unexpired and never used
//! before; a ticket for one instance admits only there. Every refusal has
//! its own error code and is counted (`tickets_refused`). Also: an open
//! server says so at start, `--allowed-origins` refuses foreign browsers
//! with 403, and `--handshakes-per-ip-per-s` answers a burst with 429.

mod common;

use std::io::Write;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::http::{admin_addr, eventually, get_json};
use common::*;
use shardline::auth::ticket::{self, Grant};
use shardline::protocol::{ClientEncoder, ErrorCode};

const SECRET: &str = "s3cret";

fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A fresh nonce per ticket: tickets are single-use.
fn nonce() -> String {
    let mut n = [0u8; 16];
    getrandom::fill(&mut n).unwrap();
    n.iter().map(|b| format!("{b:02x}")).collect()
}

fn mint(secret: &str, player: &str, instance: Option<&str>, expires_unix_s: u64) -> String {
    ticket::issue(
        secret.as_bytes(),
        &Grant {
            player: player.into(),
            instance: instance.map(str::to_owned),
            expires_unix_s,
            nonce: nonce(),
            create: false,
            claims: Vec::new(),
        },
    )
}

fn valid(player: &str, instance: Option<&str>) -> String {
    mint(SECRET, player, instance, now_s() + 300)
}

fn secured() -> (Server, SocketAddr) {
    let server = Server::start(&["--join-secret", SECRET, "--admin-listen", "127.0.0.1:0"]);
    let admin = admin_addr(&server);
    (server, admin)
}

/// Sum of one counter over the node's shards (admin /stats).
fn counter(admin: SocketAddr, name: &str) -> u64 {
    let stats = get_json(admin, "/stats");
    stats["shards"]
        .as_array()
        .expect("shards in /stats")
        .iter()
        .map(|s| s["counters"][name].as_u64().expect("counter in /stats"))
        .sum()
}

fn hello_with(c: &mut Client, ticket: &str) {
    let frame = ClientEncoder::new()
        .hello_with_ticket("p", None, ticket)
        .to_vec();
    c.send_binary(&frame);
}

/// Says Hello with `ticket` and expects `code` then close 1008; returns
/// the error message.
fn refused(server: &Server, ticket: Option<&str>, code: ErrorCode) -> String {
    let mut c = Client::connect(&server.url("/play"));
    match ticket {
        Some(t) => hello_with(&mut c, t),
        None => c.send_hello("p", None),
    }
    let message = c.expect_error(code);
    assert_eq!(c.expect_close().0, 1008, "close code after {code:?}");
    message
}

#[test]
fn a_valid_ticket_is_accepted_and_bad_ones_are_refused_and_counted() {
    let (server, admin) = secured();
    assert!(server.log_contains("join tickets required"));
    assert!(!server.log_contains("OPEN server"));

    let mut ok = Client::connect(&server.play_url("arena"));
    hello_with(&mut ok, &valid("acct-1", Some("arena")));
    ok.expect_welcome();
    assert_eq!(ok.join(Some("arena")).instance_id, "arena");
    ok.next_update();

    let m = refused(&server, None, ErrorCode::TicketRequired);
    assert!(m.contains("ticket"), "{m}");
    let forged = mint("not-the-secret", "acct-2", None, now_s() + 300);
    let m = refused(&server, Some(&forged), ErrorCode::TicketInvalid);
    assert!(m.contains("signature"), "{m}");
    let tampered = valid("acct-3", Some("arena")).replace("acct-3", "acct-4");
    refused(&server, Some(&tampered), ErrorCode::TicketInvalid);
    let expired = mint(SECRET, "acct-5", None, now_s() - 1);
    let m = refused(&server, Some(&expired), ErrorCode::TicketInvalid);
    assert!(m.contains("expired"), "{m}");
    refused(&server, Some("v1.garbage"), ErrorCode::TicketInvalid);

    // Replay: the first use succeeds, the second is refused, even on
    // another connection that may land on the other shard.
    let once = valid("acct-6", None);
    let mut first = Client::connect(&server.url("/play"));
    hello_with(&mut first, &once);
    first.expect_welcome();
    for _ in 0..2 {
        let m = refused(&server, Some(&once), ErrorCode::TicketReplayed);
        assert!(m.contains("already used"), "{m}");
    }

    // 1 missing + 4 invalid + 2 replayed.
    eventually("tickets_refused counted", RECV_TIMEOUT, || {
        (counter(admin, "tickets_refused") == 7).then_some(())
    });
    ok.close();
    first.close();
}

#[test]
fn a_ticket_for_one_instance_refuses_another_and_the_connection_stays() {
    let (server, admin) = secured();
    let mut c = Client::connect(&server.url("/play"));
    hello_with(&mut c, &valid("acct-7", Some("room-a")));
    c.expect_welcome();
    c.send_join(Some("room-b"), true);
    let m = c.expect_error(ErrorCode::TicketWrongInstance);
    assert!(m.contains("room-a") && m.contains("room-b"), "{m}");
    // Still usable: the admitted instance works, and input flows.
    assert_eq!(c.join(Some("room-a")).instance_id, "room-a");
    c.input(1, 1.0, 0.0);
    c.updates_until("input 1 applied", RECV_TIMEOUT, |u| u.last_input_seq >= 1);
    assert_eq!(counter(admin, "tickets_refused"), 1);

    // A Join without an id goes to the ticket's instance.
    let mut d = Client::connect(&server.url("/play"));
    hello_with(&mut d, &valid("acct-8", Some("room-c")));
    d.expect_welcome();
    assert_eq!(d.join(None).instance_id, "room-c");
    c.close();
    d.close();
}

#[test]
fn the_cli_issues_tickets_the_server_accepts() {
    let server = Server::start(&["--join-secret", SECRET]);
    let issue = |secret: &str, ttl: &str| {
        let out = common::shardline_cli(&[
            "ticket",
            "issue",
            "--secret",
            secret,
            "--player",
            "cli-1",
            "--instance",
            "cli-room",
            "--ttl-s",
            ttl,
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    // The expiry is the CLI's clock + 60 s: bracketed by ours before and
    // after the run, however long the run takes.
    let before = now_s();
    let t = issue(SECRET, "60");
    let after = now_s();
    let grant = ticket::verify(SECRET.as_bytes(), &t, now_s()).expect("CLI ticket verifies");
    assert_eq!(grant.player, "cli-1");
    assert_eq!(grant.instance.as_deref(), Some("cli-room"));
    assert!(
        (before + 60..=after + 60).contains(&grant.expires_unix_s),
        "expires at {}, issued between {before} and {after}",
        grant.expires_unix_s
    );

    let mut c = Client::connect(&server.play_url("cli-room"));
    hello_with(&mut c, &t);
    c.expect_welcome();
    assert_eq!(c.join(Some("cli-room")).instance_id, "cli-room");
    c.close();
    let other = issue("other", "60");
    refused(&server, Some(&other), ErrorCode::TicketInvalid);
}

#[test]
fn without_a_secret_the_server_is_open_and_says_so() {
    let server = Server::start(&[]);
    server.wait_log("OPEN server", RECV_TIMEOUT);
    let (mut c, _) = player(&server.url("/play"), "anyone");
    c.join(Some("open"));
    // A ticket is ignored by an open server.
    let mut t = Client::connect(&server.url("/play"));
    hello_with(&mut t, "v1.not.a.ticket");
    t.expect_welcome();
    c.close();
    t.close();
}

/// Upgrades /echo by hand with `origin`; returns the response status line.
fn upgrade_status(addr: SocketAddr, origin: Option<&str>) -> String {
    let mut s = tcp(addr);
    let mut req = String::from_utf8(upgrade_request(addr, "/echo")).unwrap();
    if let Some(o) = origin {
        req = req.replacen("\r\n\r\n", &format!("\r\nOrigin: {o}\r\n\r\n"), 1);
    }
    s.write_all(req.as_bytes()).unwrap();
    let (head, _) = read_http_head(&mut s);
    head.lines().next().unwrap_or("").to_owned()
}

#[test]
fn allowed_origins_refuse_foreign_browsers_with_403() {
    let server = Server::start(&[
        "--allowed-origins",
        "https://good.example,https://also.example",
        "--admin-listen",
        "127.0.0.1:0",
    ]);
    let admin = admin_addr(&server);
    let evil = upgrade_status(server.addr(), Some("https://evil.example"));
    assert!(evil.starts_with("HTTP/1.1 403"), "{evil}");
    for ok in [
        Some("https://good.example"),
        Some("https://also.example"),
        None,
    ] {
        let status = upgrade_status(server.addr(), ok);
        assert!(status.starts_with("HTTP/1.1 101"), "{ok:?}: {status}");
    }
    assert_eq!(counter(admin, "refused_origin"), 1);
}

#[test]
fn per_ip_handshake_rate_answers_a_burst_with_429() {
    let server = Server::start(&[
        "--handshakes-per-ip-per-s",
        "1",
        "--admin-listen",
        "127.0.0.1:0",
    ]);
    let admin = admin_addr(&server);
    let mut accepted = 0;
    let mut limited = 0;
    for _ in 0..30 {
        let status = upgrade_status(server.addr(), None);
        if status.starts_with("HTTP/1.1 101") {
            accepted += 1;
        } else if status.starts_with("HTTP/1.1 429") {
            limited += 1;
        } else {
            panic!("unexpected answer to a burst: {status}");
        }
    }
    // 1/s per shard with bursts of 2, over two shards: 4 pass at once, and
    // the buckets refill by 2 a second; for more than 25 of 30 to pass, the
    // burst would have to take over 10 s (each handshake takes milliseconds,
    // even on a loaded machine).
    assert!(
        limited >= 5,
        "{limited} of 30 limited ({accepted} accepted)"
    );
    assert!(accepted >= 2, "{accepted} of 30 accepted");
    assert_eq!(counter(admin, "refused_rate_limited"), limited);
    // The limit is per rate, not a ban: after a pause connections pass.
    eventually(
        "a handshake passes after the burst",
        Duration::from_secs(5),
        || {
            upgrade_status(server.addr(), None)
                .starts_with("HTTP/1.1 101")
                .then_some(())
        },
    );
}

/// A ticket that may create `instance` (or any, with `None`): v2.
fn creating(player: &str, instance: Option<&str>) -> String {
    ticket::issue(
        SECRET.as_bytes(),
        &Grant {
            player: player.into(),
            instance: instance.map(str::to_owned),
            expires_unix_s: now_s() + 300,
            nonce: nonce(),
            create: true,
            claims: Vec::new(),
        },
    )
}

#[test]
fn with_the_ticket_create_policy_only_a_ticket_that_grants_creation_creates() {
    let server = Server::start(&[
        "--join-secret",
        SECRET,
        "--create-policy",
        "ticket",
        "--admin-listen",
        "127.0.0.1:0",
    ]);
    let admin = admin_addr(&server);
    let room = "studio-room";
    // The backend grants the host the right to create its room.
    let mut host = Client::connect(&server.play_url(room));
    hello_with(&mut host, &creating("host", Some(room)));
    host.expect_welcome();
    assert_eq!(host.join(Some(room)).instance_id, room);
    // A ticket without the right joins that room, and creates none.
    let mut guest = Client::connect(&server.url("/play"));
    hello_with(&mut guest, &valid("guest", None));
    guest.expect_welcome();
    guest.send_join(Some("guests-own"), true);
    let why = guest.expect_error(ErrorCode::TicketWrongInstance);
    assert!(why.contains("create"), "{why}");
    assert_eq!(
        guest.join(Some(room)).instance_id,
        room,
        "the connection stays"
    );
    // A create ticket for any id creates any room.
    let mut other = Client::connect(&server.url("/play"));
    hello_with(&mut other, &creating("other", None));
    other.expect_welcome();
    assert_eq!(other.join(Some("elsewhere")).instance_id, "elsewhere");
    eventually("creates_refused_ticket counted", RECV_TIMEOUT, || {
        (counter(admin, "creates_refused_ticket") == 1).then_some(())
    });
    // `shardline ticket issue --create` mints such a ticket.
    let out = shardline_cli(&[
        "ticket", "issue", "--secret", SECRET, "--player", "cli", "--create",
    ]);
    let minted = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && minted.starts_with("v2."),
        "{minted}"
    );
    assert!(
        minted.trim().rsplit('.').nth(1) == Some("create"),
        "{minted}"
    );
}

#[test]
fn the_ticket_create_policy_needs_a_join_secret() {
    let out = shardline_cli(&[
        "serve",
        "--create-policy",
        "ticket",
        "--listen",
        "127.0.0.1:0",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--create-policy") && err.contains("--join-secret"),
        "{err}"
    );
}
