//! A replicated instance snapshot: what a node stores in the directory so
//! another node of its region can restore the instance if it dies.
//! Pure code: bytes in, values out.
//!
//! ```text
//! offset  size  field
//!      0     4  magic "SLRP"
//!      4     4  format version (u32 LE) = snapshot::FORMAT_VERSION
//!      8     2  game name length n (u16 LE)
//!     10     n  game name (GameFactory::name)
//!   10+n     …  lz4 block (size-prepended) of the rkyv archive of one
//!               InstanceSnapshot
//! ```

use rkyv::rancor::BoxedError;
use rkyv::util::AlignedVec;

use crate::snapshot::{InstanceSnapshot, FORMAT_VERSION};

const MAGIC: [u8; 4] = *b"SLRP";
const FIXED_BYTES: usize = 10;

/// Why stored bytes are not a usable replica.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReplicaError {
    #[error("not a replicated snapshot (bad magic or truncated)")]
    NotAReplica,
    #[error("replica format {0}; this build reads {FORMAT_VERSION}")]
    Version(u32),
    #[error("replica of game {found:?}; this node runs {expected:?}")]
    Game { found: String, expected: String },
    #[error("replica payload: {0}")]
    Payload(String),
    #[error("replica is {bytes} bytes compressed; --replica-bytes-max is {max}")]
    TooLarge { bytes: usize, max: usize },
}

/// Archives and compresses `snap`; refuses a result over `bytes_max`.
pub fn encode(
    game: &str,
    snap: &InstanceSnapshot,
    bytes_max: usize,
) -> Result<Vec<u8>, ReplicaError> {
    let archived =
        rkyv::to_bytes::<BoxedError>(snap).map_err(|e| ReplicaError::Payload(e.to_string()))?;
    let packed = lz4_flex::compress_prepend_size(&archived);
    let mut out = Vec::with_capacity(FIXED_BYTES + game.len() + packed.len());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&(game.len() as u16).to_le_bytes());
    out.extend_from_slice(game.as_bytes());
    out.extend_from_slice(&packed);
    if out.len() > bytes_max {
        return Err(ReplicaError::TooLarge {
            bytes: out.len(),
            max: bytes_max,
        });
    }
    Ok(out)
}

/// Checks and decodes a replica written by [`encode`] for game `game`.
pub fn decode(game: &str, bytes: &[u8]) -> Result<InstanceSnapshot, ReplicaError> {
    if bytes.len() < FIXED_BYTES || bytes[..4] != MAGIC {
        return Err(ReplicaError::NotAReplica);
    }
    let version = u32::from_le_bytes(bytes[4..8].try_into().expect("4 bytes"));
    if version != FORMAT_VERSION {
        return Err(ReplicaError::Version(version));
    }
    let n = u16::from_le_bytes(bytes[8..10].try_into().expect("2 bytes")) as usize;
    let Some(name) = bytes.get(FIXED_BYTES..FIXED_BYTES + n) else {
        return Err(ReplicaError::NotAReplica);
    };
    if name != game.as_bytes() {
        return Err(ReplicaError::Game {
            found: String::from_utf8_lossy(name).into_owned(),
            expected: game.to_owned(),
        });
    }
    let raw = lz4_flex::decompress_size_prepended(&bytes[FIXED_BYTES + n..])
        .map_err(|e| ReplicaError::Payload(e.to_string()))?;
    // rkyv needs its archive aligned; a Vec<u8> may not be.
    let mut aligned = AlignedVec::<16>::with_capacity(raw.len());
    aligned.extend_from_slice(&raw);
    rkyv::from_bytes::<InstanceSnapshot, BoxedError>(&aligned)
        .map_err(|e| ReplicaError::Payload(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::testutil;

    #[test]
    fn round_trips_and_refuses_others() {
        let snap = testutil::sample_shard(0, 1, 1, 1).instances.remove(0);
        let bytes = encode("arena", &snap, 1 << 20).unwrap();
        assert_eq!(decode("arena", &bytes).unwrap(), snap);
        assert!(matches!(
            decode("chess", &bytes),
            Err(ReplicaError::Game { .. })
        ));
        assert_eq!(decode("arena", &bytes[..5]), Err(ReplicaError::NotAReplica));
        let mut bad = bytes.clone();
        bad[4] = 99;
        assert_eq!(decode("arena", &bad), Err(ReplicaError::Version(99)));
        let mut cut = bytes.clone();
        cut.truncate(bytes.len() - 3);
        assert!(matches!(
            decode("arena", &cut),
            Err(ReplicaError::Payload(_))
        ));
        assert!(matches!(
            encode("arena", &snap, 10),
            Err(ReplicaError::TooLarge { max: 10, .. })
        ));
    }
}
