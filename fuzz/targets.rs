//! The fuzz targets' bodies, shared by the cargo-fuzz binaries
//! (fuzz_targets/*.rs, nightly) and the stable harness in the test suite
//! (tests/fuzz_server.rs). Each must never panic, whatever the bytes.

use shardline::net::http::{parse_head, Route};
use shardline::protocol::{decode_client, ClientCmd, ErrorCode};

/// The client-message decoder: any bytes give a command or a typed error,
/// and a decoded command holds only values the server accepts.
pub fn decode_client_target(data: &[u8]) {
    match decode_client(data) {
        Ok(ClientCmd::Input { input, .. }) => {
            assert!(input.move_x.is_finite() && (-1.0..=1.0).contains(&input.move_x));
            assert!(input.move_y.is_finite() && (-1.0..=1.0).contains(&input.move_y));
        }
        Ok(ClientCmd::Hello { player_name, .. }) => {
            assert!(player_name.len() <= shardline::protocol::PLAYER_NAME_LEN_MAX);
        }
        Ok(_) => {}
        Err(e) => assert!(
            matches!(
                e.code,
                ErrorCode::BadMessage | ErrorCode::BadInput | ErrorCode::InvalidInstanceId
            ),
            "unexpected error code {:?}",
            e.code
        ),
    }
}

/// Longest request head the target allows (the server's default).
pub const HEAD_BYTES_MAX: usize = 8192;

/// The upgrade request head parser: any bytes give a head, "need more", or
/// a typed error; a parsed head never claims more bytes than it was given.
pub fn upgrade_head_target(data: &[u8]) {
    match parse_head(data, HEAD_BYTES_MAX) {
        Ok(Some(head)) => {
            assert!(head.len <= data.len() && head.len <= HEAD_BYTES_MAX);
            if let Route::Play { instance: Some(id) } = &head.route {
                assert!(!id.as_str().is_empty());
            }
        }
        Ok(None) => assert!(data.len() < HEAD_BYTES_MAX),
        Err(_) => {}
    }
}
