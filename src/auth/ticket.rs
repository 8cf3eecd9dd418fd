//! Join tickets: proof that a studio's backend admitted a player.
//!
//! A ticket is `v1.<player>.<instance>.<expires>.<nonce>.<mac>`:
//! - `player`: the studio's player id, 1–64 bytes of `[A-Za-z0-9_-]`;
//! - `instance`: the instance id the player may join, or `*` for any;
//! - `expires`: Unix time in seconds after which the ticket is refused;
//! - `nonce`: 16–64 hex digits, unique per ticket (a ticket is single-use);
//! - `mac`: HMAC-SHA256 with the shared secret over everything before the
//!   last dot, as 64 hex digits.
//!
//! The backend mints tickets (`shardline ticket issue` shows how); the
//! server verifies them without calling anyone. Pure code: time is a
//! parameter.

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

pub const TICKET_VERSION: &str = "v1";
/// Longest ticket accepted, bytes (bounds parsing work per Hello).
pub const TICKET_LEN_MAX: usize = 512;
const PLAYER_LEN_MAX: usize = 64;
const NONCE_HEX_MIN: usize = 16;
const NONCE_HEX_MAX: usize = 64;

/// What a valid ticket grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub player: String,
    /// `None`: any instance.
    pub instance: Option<String>,
    pub expires_unix_s: u64,
    pub nonce: String,
}

impl Grant {
    pub fn allows(&self, instance: &str) -> bool {
        self.instance.as_deref().is_none_or(|i| i == instance)
    }
}

/// Why a ticket is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TicketError {
    #[error("ticket is malformed: {0}")]
    Malformed(&'static str),
    #[error("ticket signature does not match (forged, or signed with another secret)")]
    BadSignature,
    #[error("ticket expired at {expired_at} (now {now}, Unix seconds)")]
    Expired { expired_at: u64, now: u64 },
}

/// Mints a ticket (backends and tests).
pub fn issue(secret: &[u8], grant: &Grant) -> String {
    let body = format!(
        "{TICKET_VERSION}.{}.{}.{}.{}",
        grant.player,
        grant.instance.as_deref().unwrap_or("*"),
        grant.expires_unix_s,
        grant.nonce
    );
    format!("{body}.{}", hex(&mac(secret, body.as_bytes())))
}

/// Checks a ticket's form, signature and expiry at `now_unix_s`.
pub fn verify(secret: &[u8], ticket: &str, now_unix_s: u64) -> Result<Grant, TicketError> {
    if ticket.len() > TICKET_LEN_MAX {
        return Err(TicketError::Malformed("longer than 512 bytes"));
    }
    let (body, mac_hex) = ticket
        .rsplit_once('.')
        .ok_or(TicketError::Malformed("no signature"))?;
    let parts: Vec<&str> = body.split('.').collect();
    let [version, player, instance, expires, nonce] = parts[..] else {
        return Err(TicketError::Malformed(
            "expected v1.player.instance.expires.nonce.mac",
        ));
    };
    if version != TICKET_VERSION {
        return Err(TicketError::Malformed("unknown version"));
    }
    let given = unhex(mac_hex).ok_or(TicketError::Malformed("signature is not 64 hex digits"))?;
    // Signature first, in constant time: nothing else about a forged ticket
    // is worth telling.
    let mut m = HmacSha256::new_from_slice(secret).expect("HMAC takes any key length");
    m.update(body.as_bytes());
    m.verify_slice(&given)
        .map_err(|_| TicketError::BadSignature)?;
    if player.is_empty()
        || player.len() > PLAYER_LEN_MAX
        || !player
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(TicketError::Malformed("bad player id"));
    }
    let expires_unix_s: u64 = expires
        .parse()
        .map_err(|_| TicketError::Malformed("expiry is not a number"))?;
    if !(NONCE_HEX_MIN..=NONCE_HEX_MAX).contains(&nonce.len())
        || !nonce.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return Err(TicketError::Malformed("nonce must be 16-64 hex digits"));
    }
    if now_unix_s > expires_unix_s {
        return Err(TicketError::Expired {
            expired_at: expires_unix_s,
            now: now_unix_s,
        });
    }
    Ok(Grant {
        player: player.to_owned(),
        instance: (instance != "*").then(|| instance.to_owned()),
        expires_unix_s,
        nonce: nonce.to_ascii_lowercase(),
    })
}

fn mac(secret: &[u8], body: &[u8]) -> [u8; 32] {
    let mut m = HmacSha256::new_from_slice(secret).expect("HMAC takes any key length");
    m.update(body);
    m.finalize().into_bytes().into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, chunk) in s.as_bytes().chunks(2).enumerate() {
        let pair = std::str::from_utf8(chunk).ok()?;
        out[i] = u8::from_str_radix(pair, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(instance: Option<&str>) -> Grant {
        Grant {
            player: "acct-42".into(),
            instance: instance.map(str::to_owned),
            expires_unix_s: 1_000,
            nonce: "0123456789abcdef".into(),
        }
    }

    #[test]
    fn valid_tickets_verify() {
        let t = issue(b"secret", &grant(Some("arena-1")));
        let g = verify(b"secret", &t, 999).unwrap();
        assert_eq!(g, grant(Some("arena-1")));
        assert!(g.allows("arena-1") && !g.allows("arena-2"));
        let any = verify(b"secret", &issue(b"secret", &grant(None)), 1_000).unwrap();
        assert!(any.allows("whatever"));
    }

    #[test]
    fn forged_expired_and_malformed_are_refused() {
        let t = issue(b"secret", &grant(Some("arena-1")));
        assert_eq!(verify(b"other", &t, 0), Err(TicketError::BadSignature));
        let tampered = t.replace("arena-1", "arena-2");
        assert_eq!(
            verify(b"secret", &tampered, 0),
            Err(TicketError::BadSignature)
        );
        assert!(matches!(
            verify(b"secret", &t, 1_001),
            Err(TicketError::Expired {
                expired_at: 1_000,
                now: 1_001
            })
        ));
        for bad in [
            "",
            "v1.a.b",
            "v1.a.*.1.0123456789abcdef.zz",
            &"x".repeat(600),
        ] {
            assert!(
                matches!(verify(b"secret", bad, 0), Err(TicketError::Malformed(_))),
                "{bad}"
            );
        }
    }
}
