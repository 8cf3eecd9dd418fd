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
//! A ticket that also grants creating instances (needed with
//! `--create-policy ticket`) is `v2.<player>.<instance>.<expires>.<nonce>.<rights>.<mac>`,
//! `rights` being `create` (create `instance`, or any instance with `*`)
//! or `join` (the same as a v1 ticket). v1 tickets stay valid and grant
//! no creation.
//!
//! A ticket that also carries the backend's own claims about the player
//! (its team, rank, cosmetics…, handed to `Game::on_join`) is
//! `v3.<player>.<instance>.<expires>.<nonce>.<rights>.<claims>.<mac>`,
//! `claims` being `key=value` pairs joined by `,` (each key and value
//! 1–64 bytes of `[A-Za-z0-9_-]`, at most 16 pairs, keys unique).
//!
//! The backend mints tickets (`shardline ticket issue` shows how); the
//! server verifies them without calling anyone. Pure code: time is a
//! parameter.

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

pub const TICKET_VERSION: &str = "v1";
/// The version whose tickets carry rights (`create`).
pub const TICKET_VERSION_RIGHTS: &str = "v2";
/// The right to create the ticket's instance (or any, with `*`).
pub const RIGHT_CREATE: &str = "create";
/// Join only (as v1).
pub const RIGHT_JOIN: &str = "join";
/// The version whose tickets carry claims.
pub const TICKET_VERSION_CLAIMS: &str = "v3";
/// Longest ticket accepted, bytes (bounds parsing work per Hello).
pub const TICKET_LEN_MAX: usize = 1024;
/// Claims one ticket may carry.
pub const CLAIMS_MAX: usize = 16;
const CLAIM_PART_LEN_MAX: usize = 64;
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
    /// It may create instances (`instance`, or any): a v2 ticket with the
    /// `create` right.
    pub create: bool,
    /// The backend's claims (a v3 ticket), in the ticket's order.
    pub claims: Vec<(String, String)>,
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
    let common = format!(
        "{}.{}.{}.{}",
        grant.player,
        grant.instance.as_deref().unwrap_or("*"),
        grant.expires_unix_s,
        grant.nonce
    );
    let rights = if grant.create {
        RIGHT_CREATE
    } else {
        RIGHT_JOIN
    };
    let body = if !grant.claims.is_empty() {
        let claims: Vec<String> = grant
            .claims
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        format!(
            "{TICKET_VERSION_CLAIMS}.{common}.{rights}.{}",
            claims.join(",")
        )
    } else if grant.create {
        format!("{TICKET_VERSION_RIGHTS}.{common}.{RIGHT_CREATE}")
    } else {
        format!("{TICKET_VERSION}.{common}")
    };
    format!("{body}.{}", hex(&mac(secret, body.as_bytes())))
}

/// Checks a ticket's form, signature and expiry at `now_unix_s`.
pub fn verify(secret: &[u8], ticket: &str, now_unix_s: u64) -> Result<Grant, TicketError> {
    if ticket.len() > TICKET_LEN_MAX {
        return Err(TicketError::Malformed("longer than 1024 bytes"));
    }
    let (body, mac_hex) = ticket
        .rsplit_once('.')
        .ok_or(TicketError::Malformed("no signature"))?;
    let parts: Vec<&str> = body.split('.').collect();
    let (player, instance, expires, nonce, rights, claims) = match parts[..] {
        [v, player, instance, expires, nonce] if v == TICKET_VERSION => {
            (player, instance, expires, nonce, RIGHT_JOIN, "")
        }
        [v, player, instance, expires, nonce, rights] if v == TICKET_VERSION_RIGHTS => {
            (player, instance, expires, nonce, rights, "")
        }
        [v, player, instance, expires, nonce, rights, claims] if v == TICKET_VERSION_CLAIMS => {
            (player, instance, expires, nonce, rights, claims)
        }
        [v, ..]
            if v != TICKET_VERSION && v != TICKET_VERSION_RIGHTS && v != TICKET_VERSION_CLAIMS =>
        {
            return Err(TicketError::Malformed("unknown version"))
        }
        _ => {
            return Err(TicketError::Malformed(
                "expected v1.player.instance.expires.nonce.mac, v2.player.instance.expires.nonce.rights.mac or v3.player.instance.expires.nonce.rights.claims.mac",
            ))
        }
    };
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
    let create = match rights {
        RIGHT_CREATE => true,
        RIGHT_JOIN => false,
        _ => return Err(TicketError::Malformed("rights must be create or join")),
    };
    if now_unix_s > expires_unix_s {
        return Err(TicketError::Expired {
            expired_at: expires_unix_s,
            now: now_unix_s,
        });
    }
    let claims = parse_claims(claims)?;
    Ok(Grant {
        player: player.to_owned(),
        instance: (instance != "*").then(|| instance.to_owned()),
        expires_unix_s,
        nonce: nonce.to_ascii_lowercase(),
        create,
        claims,
    })
}

/// `k=v,k=v` ("" for none): see the module doc for the rules.
fn parse_claims(text: &str) -> Result<Vec<(String, String)>, TicketError> {
    if text.is_empty() {
        return Ok(Vec::new());
    }
    let part_ok = |s: &str| {
        (1..=CLAIM_PART_LEN_MAX).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    };
    let mut claims: Vec<(String, String)> = Vec::new();
    for pair in text.split(',') {
        let (k, v) = pair
            .split_once('=')
            .ok_or(TicketError::Malformed("a claim is not key=value"))?;
        if !part_ok(k) || !part_ok(v) {
            return Err(TicketError::Malformed(
                "claim keys and values are 1-64 bytes of [A-Za-z0-9_-]",
            ));
        }
        if claims.iter().any(|(seen, _)| seen == k) {
            return Err(TicketError::Malformed("a claim key appears twice"));
        }
        if claims.len() == CLAIMS_MAX {
            return Err(TicketError::Malformed("more than 16 claims"));
        }
        claims.push((k.to_owned(), v.to_owned()));
    }
    Ok(claims)
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
            create: false,
            claims: Vec::new(),
        }
    }

    #[test]
    fn v3_tickets_carry_signed_claims() {
        let mut g = grant(Some("arena-1"));
        g.claims = vec![("team".into(), "red".into()), ("rank".into(), "7".into())];
        let t = issue(b"secret", &g);
        assert!(
            t.starts_with("v3.") && t.contains(".join.team=red,rank=7."),
            "{t}"
        );
        assert_eq!(verify(b"secret", &t, 999).unwrap(), g);
        let tampered = t.replace("team=red", "team=blu");
        assert_eq!(
            verify(b"secret", &tampered, 0),
            Err(TicketError::BadSignature)
        );
        for claims in ["team", "team=", "a=b,a=c", "t=r.d", "t=r d"] {
            let body = format!("v3.acct.*.1000.0123456789abcdef.join.{claims}");
            let t = format!("{body}.{}", hex(&mac(b"secret", body.as_bytes())));
            assert!(
                matches!(verify(b"secret", &t, 0), Err(TicketError::Malformed(_))),
                "{claims}"
            );
        }
    }

    #[test]
    fn v2_tickets_carry_the_create_right_and_v1_grant_none() {
        let mut g = grant(Some("arena-1"));
        g.create = true;
        let t = issue(b"secret", &g);
        assert!(t.starts_with("v2.") && t.contains(".create."), "{t}");
        assert_eq!(verify(b"secret", &t, 999).unwrap(), g);
        let v1 = issue(b"secret", &grant(None));
        assert!(v1.starts_with("v1."));
        assert!(!verify(b"secret", &v1, 999).unwrap().create);
        // The right is signed: a join ticket cannot be turned into a create one.
        let tampered = t.replace(".create.", ".join.");
        assert_eq!(
            verify(b"secret", &tampered, 0),
            Err(TicketError::BadSignature)
        );
        let odd = {
            let body = "v2.acct.*.1000.0123456789abcdef.admin";
            format!("{body}.{}", hex(&mac(b"secret", body.as_bytes())))
        };
        assert!(matches!(
            verify(b"secret", &odd, 0),
            Err(TicketError::Malformed(_))
        ));
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
            &"x".repeat(1100),
        ] {
            assert!(
                matches!(verify(b"secret", bad, 0), Err(TicketError::Malformed(_))),
                "{bad}"
            );
        }
    }
}
