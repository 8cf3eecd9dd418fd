//! Why a connection ended, and the WebSocket close code each reason sends.
//! Every reason is counted per shard (`ShardMetrics::closed`).

/// Close codes in the 4000–4999 range are private to this protocol
/// (RFC 6455 §7.4.2); docs/protocol.md lists them for client authors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloseReason {
    /// The client closed, or left cleanly.
    Normal,
    /// Server shutting down (1001).
    GoingAway,
    /// Not a valid protocol message (1002).
    ProtocolError,
    /// A text frame on /play (1003).
    UnsupportedData,
    /// A message not allowed in this state, e.g. Input before Join (1008).
    PolicyViolation,
    /// A message over --max-payload (1009).
    MessageTooBig,
    /// A bug on our side, e.g. a game rule panicked (1011).
    InternalError,
    /// Node full or shedding load (1013).
    TryAgainLater,
    /// Upgrade + Hello not done within --connect-timeout-ms (4000).
    ConnectTimeout,
    /// Silent for two heartbeat intervals (4001).
    HeartbeatTimeout,
    /// The client stopped reading and its outbound buffer filled (4002).
    SlowConsumer,
    /// The same player resumed on another connection (4003).
    Replaced,
    /// The socket failed or the peer vanished without a close frame.
    Vanished,
}

impl CloseReason {
    pub const ALL: [CloseReason; 13] = [
        Self::Normal,
        Self::GoingAway,
        Self::ProtocolError,
        Self::UnsupportedData,
        Self::PolicyViolation,
        Self::MessageTooBig,
        Self::InternalError,
        Self::TryAgainLater,
        Self::ConnectTimeout,
        Self::HeartbeatTimeout,
        Self::SlowConsumer,
        Self::Replaced,
        Self::Vanished,
    ];

    /// The close code sent to the client.
    pub fn code(self) -> u16 {
        match self {
            Self::Normal | Self::Vanished => 1000,
            Self::GoingAway => 1001,
            Self::ProtocolError => 1002,
            Self::UnsupportedData => 1003,
            Self::PolicyViolation => 1008,
            Self::MessageTooBig => 1009,
            Self::InternalError => 1011,
            Self::TryAgainLater => 1013,
            Self::ConnectTimeout => 4000,
            Self::HeartbeatTimeout => 4001,
            Self::SlowConsumer => 4002,
            Self::Replaced => 4003,
        }
    }

    /// Metric label and the close frame's reason text.
    pub fn label(self) -> &'static str {
        match self {
            Self::Normal => "normal",
            Self::GoingAway => "going_away",
            Self::ProtocolError => "protocol_error",
            Self::UnsupportedData => "unsupported_data",
            Self::PolicyViolation => "policy_violation",
            Self::MessageTooBig => "message_too_big",
            Self::InternalError => "internal_error",
            Self::TryAgainLater => "try_again_later",
            Self::ConnectTimeout => "connect_timeout",
            Self::HeartbeatTimeout => "heartbeat_timeout",
            Self::SlowConsumer => "slow_consumer",
            Self::Replaced => "replaced",
            Self::Vanished => "vanished",
        }
    }

    pub fn index(self) -> usize {
        Self::ALL.iter().position(|r| *r == self).unwrap_or(0)
    }
}
