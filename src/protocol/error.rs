//! The error a malformed or invalid message turns into.

use super::ErrorCode;

/// Why a message was refused: the `code` and `message` go back to the client
/// verbatim in an `Error` message.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct ProtocolError {
    pub code: ErrorCode,
    pub message: String,
}

impl ProtocolError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// True when the connection must be closed after the `Error` is sent.
    ///
    /// A client that sends bytes we cannot parse (BadMessage), breaks the
    /// message order (OutOfOrder) or meets a full server (ServerFull) cannot
    /// usefully go on; a refused input or instance id only costs that one
    /// message, so BadInput / InvalidInstanceId and the rest keep the
    /// connection.
    pub fn is_fatal(&self) -> bool {
        self.close_code().is_some()
    }

    /// The WebSocket close code that follows the `Error`, as the schema
    /// documents it for each error code; `None` keeps the connection open.
    pub fn close_code(&self) -> Option<u16> {
        match self.code {
            // 1002: protocol error.
            ErrorCode::BadMessage => Some(1002),
            // 1008: policy violation.
            ErrorCode::OutOfOrder => Some(1008),
            // 1013: try again later.
            ErrorCode::ServerFull => Some(1013),
            _ => None,
        }
    }

    pub(crate) fn bad_message(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::BadMessage, message)
    }
}

/// Formats a verifier error on one line, e.g. "Range [72, 76) is out of
/// bounds (while verifying table field `player_name` at position 40, ...)":
/// the flatbuffers crate's `Display` spreads its trace over several lines,
/// which reads badly inside an `Error` message and in logs.
pub(crate) fn verifier_reason(err: &flatbuffers::InvalidFlatbuffer) -> String {
    let text = err.to_string();
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    let mut out = lines
        .next()
        .unwrap_or_default()
        .trim_end_matches('.')
        .to_owned();
    let mut traced = false;
    for trace in lines {
        out.push_str(if traced { ", " } else { " (" });
        out.push_str(trace);
        traced = true;
    }
    if traced {
        out.push(')');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fatal_codes_match_the_schema_close_codes() {
        let fatal = |code| ProtocolError::new(code, "x").is_fatal();
        assert!(fatal(ErrorCode::BadMessage));
        assert!(fatal(ErrorCode::OutOfOrder));
        assert!(fatal(ErrorCode::ServerFull));
        assert!(!fatal(ErrorCode::BadInput));
        assert!(!fatal(ErrorCode::InvalidInstanceId));
        assert!(!fatal(ErrorCode::InstanceFull));
        assert_eq!(
            ProtocolError::new(ErrorCode::BadMessage, "x").close_code(),
            Some(1002)
        );
    }

    #[test]
    fn displays_its_message() {
        let e = ProtocolError::new(ErrorCode::BadInput, "move_x is NaN");
        assert_eq!(e.to_string(), "move_x is NaN");
    }

    #[test]
    fn verifier_reason_is_one_line() {
        let err = flatbuffers::root::<crate::protocol::fb::ClientMessage>(&[1, 2, 3])
            .expect_err("3 bytes cannot hold a root offset");
        let reason = verifier_reason(&err);
        assert_eq!(reason, "Range [0, 4) is out of bounds");

        let mut enc = crate::protocol::ClientEncoder::new();
        let frame = enc.hello("player-one", None);
        let err =
            flatbuffers::root::<crate::protocol::fb::ClientMessage>(&frame[..frame.len() - 8])
                .expect_err("the name's bytes are cut off");
        let reason = verifier_reason(&err);
        assert!(!reason.contains('\n'), "{reason:?}");
        assert!(
            reason.contains(" is out of bounds (while verifying table field `player_name`"),
            "{reason:?}"
        );
        assert!(reason.ends_with(')'), "{reason:?}");
    }
}
