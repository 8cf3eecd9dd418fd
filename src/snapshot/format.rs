//! The on-disk format of one snapshot file: a fixed 64-byte header, then one
//! rkyv archive of a [`ShardSnapshot`].
//!
//! ```text
//! offset  size  field
//!      0     8  magic "SHLNSNAP"
//!      8     4  format version (u32 LE), 1
//!     12     4  header length (u32 LE), 64
//!     16     8  generation (u64 LE): per shard, +1 on every write
//!     24     8  payload length (u64 LE)
//!     32     4  CRC-32 (IEEE) of the payload (u32 LE)
//!     36     4  shard index (u32 LE), also inside the payload
//!     40    20  reserved, zero
//!     60     4  CRC-32 of bytes 0..60 (u32 LE)
//!     64     …  payload: rkyv archive of ShardSnapshot, exactly `payload length` bytes
//! ```
//!
//! Magic and version sit at fixed offsets in every version, so a reader
//! tells a foreign file from a newer one before it trusts anything else.
//! The header has its own checksum, so a flipped generation or length is
//! caught before it steers the choice between slots. The payload starts at
//! 64: a memory map is page-aligned, so the archive is 64-aligned, more than
//! the 16 bytes rkyv's archived types need. Reading checks, in order: size,
//! magic, version, header checksum, payload length, payload checksum, then
//! rkyv's validation (checked access), then that payload and header agree.
//! Each failure is one [`Invalid`] reason.

use std::fs::File;
use std::io::Read;
use std::ops::Range;
use std::path::{Path, PathBuf};

use rkyv::rancor::BoxedError;
use rkyv::util::AlignedVec;

use super::error::SnapshotError;
pub use crate::game::instance::{
    ArchivedInstanceSnapshot, ArchivedSeatSnapshot, InstanceSnapshot, SeatSnapshot,
};

/// First bytes of every snapshot file.
pub const MAGIC: [u8; 8] = *b"SHLNSNAP";
/// The format this build writes and reads. Bump it on any change to the
/// header or to the archived types (field added, reordered or retyped):
/// rkyv archives have no schema evolution, so an old reader must refuse a
/// new file instead of misreading it.
pub const FORMAT_VERSION: u32 = 1;
/// Header length; the payload starts here.
pub const HEADER_BYTES: usize = 64;
/// Alignment the payload needs: rkyv's archived primitives need at most 16
/// bytes (`u128`); the header length keeps a page-aligned map's payload
/// aligned to it.
pub const PAYLOAD_ALIGN: usize = 16;
const _: () = assert!(HEADER_BYTES % PAYLOAD_ALIGN == 0);

const MAGIC_AT: Range<usize> = 0..8;
const VERSION_AT: Range<usize> = 8..12;
const HEADER_LEN_AT: Range<usize> = 12..16;
const GENERATION_AT: Range<usize> = 16..24;
const PAYLOAD_LEN_AT: Range<usize> = 24..32;
const PAYLOAD_CRC_AT: Range<usize> = 32..36;
const SHARD_AT: Range<usize> = 36..40;
const HEADER_CRC_AT: Range<usize> = 60..64;
const _: () = assert!(HEADER_CRC_AT.end == HEADER_BYTES && SHARD_AT.end <= HEADER_CRC_AT.start);

/// Everything one shard's snapshot holds: the payload of one file.
#[derive(Debug, Clone, PartialEq, Eq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct ShardSnapshot {
    /// The shard that wrote it; names the file set (`shard-<shard>.*`).
    pub shard: u32,
    /// Shards of the node that wrote it. Informational: restore re-places
    /// instances by the current shard count.
    pub shards: u32,
    /// The node that wrote it, for the operator.
    pub node_id: String,
    /// [`GameFactory::name`](crate::game::GameFactory::name) of the game the
    /// states belong to; restore refuses files of another game, whose
    /// bytes its factory cannot read.
    pub game: String,
    /// Set by the store when writing: one more than the newest generation
    /// on disk for this shard.
    pub generation: u64,
    /// Set by the store when writing (wall clock, Unix milliseconds).
    pub written_at_unix_ms: u64,
    pub instances: Vec<InstanceSnapshot>,
}

impl ShardSnapshot {
    /// A snapshot to hand to the store; generation and time are set when it
    /// is written.
    pub fn new(
        shard: u32,
        shards: u32,
        node_id: &str,
        game: &str,
        instances: Vec<InstanceSnapshot>,
    ) -> Self {
        Self {
            shard,
            shards,
            node_id: node_id.to_owned(),
            game: game.to_owned(),
            generation: 0,
            written_at_unix_ms: 0,
            instances,
        }
    }
}

/// The fixed header of a snapshot file, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub version: u32,
    pub generation: u64,
    pub shard: u32,
    pub payload_bytes: u64,
    pub payload_crc32: u32,
}

impl Header {
    /// Whole file length this header describes.
    pub fn file_bytes(&self) -> Option<u64> {
        self.payload_bytes.checked_add(HEADER_BYTES as u64)
    }

    pub fn encode(&self) -> [u8; HEADER_BYTES] {
        let mut b = [0u8; HEADER_BYTES];
        b[MAGIC_AT].copy_from_slice(&MAGIC);
        b[VERSION_AT].copy_from_slice(&self.version.to_le_bytes());
        b[HEADER_LEN_AT].copy_from_slice(&(HEADER_BYTES as u32).to_le_bytes());
        b[GENERATION_AT].copy_from_slice(&self.generation.to_le_bytes());
        b[PAYLOAD_LEN_AT].copy_from_slice(&self.payload_bytes.to_le_bytes());
        b[PAYLOAD_CRC_AT].copy_from_slice(&self.payload_crc32.to_le_bytes());
        b[SHARD_AT].copy_from_slice(&self.shard.to_le_bytes());
        let crc = crc32fast::hash(&b[..HEADER_CRC_AT.start]);
        b[HEADER_CRC_AT].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Decodes the header from the first bytes of a file (`head` may be the
    /// whole file or just its first [`HEADER_BYTES`]).
    pub fn decode(head: &[u8]) -> Result<Header, Invalid> {
        if head.is_empty() {
            return Err(Invalid::Empty);
        }
        let magic_len = head.len().min(MAGIC.len());
        if head[..magic_len] != MAGIC[..magic_len] {
            return Err(Invalid::Foreign {
                found: escaped(&head[..magic_len]),
            });
        }
        let truncated = Invalid::Truncated {
            want: HEADER_BYTES as u64,
            have: head.len() as u64,
        };
        if head.len() < VERSION_AT.end {
            return Err(truncated);
        }
        let version = u32_at(head, VERSION_AT);
        if version != FORMAT_VERSION {
            return Err(Invalid::UnsupportedVersion(version));
        }
        if head.len() < HEADER_BYTES {
            return Err(truncated);
        }
        let stored = u32_at(head, HEADER_CRC_AT);
        let computed = crc32fast::hash(&head[..HEADER_CRC_AT.start]);
        if stored != computed {
            return Err(Invalid::HeaderChecksum { stored, computed });
        }
        let header_len = u32_at(head, HEADER_LEN_AT);
        if header_len as usize != HEADER_BYTES {
            return Err(Invalid::Inconsistent(format!(
                "header length {header_len}, version {FORMAT_VERSION} has {HEADER_BYTES}"
            )));
        }
        Ok(Header {
            version,
            generation: u64::from_le_bytes(head[GENERATION_AT].try_into().expect("8 bytes")),
            shard: u32_at(head, SHARD_AT),
            payload_bytes: u64::from_le_bytes(head[PAYLOAD_LEN_AT].try_into().expect("8 bytes")),
            payload_crc32: u32_at(head, PAYLOAD_CRC_AT),
        })
    }
}

fn u32_at(b: &[u8], at: Range<usize>) -> u32 {
    u32::from_le_bytes(b[at].try_into().expect("4 bytes"))
}

/// Bytes as printable text: `SHLNSNAP`, `{\n  "a`, `\x7fELF\x02\x01\x01\x00`.
fn escaped(bytes: &[u8]) -> String {
    bytes
        .iter()
        .flat_map(|&b| std::ascii::escape_default(b))
        .map(char::from)
        .collect()
}

/// Why a file is not a readable snapshot. The `Display` text is the reason
/// shown to operators; [`Invalid::verdict`] is its one-word class.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    #[error("empty file")]
    Empty,
    #[error("truncated: want {want} bytes, have {have}")]
    Truncated { want: u64, have: u64 },
    #[error("foreign file: bad magic \"{found}\" (want \"SHLNSNAP\")")]
    Foreign { found: String },
    #[error("unsupported format version {0} (this build reads version {FORMAT_VERSION})")]
    UnsupportedVersion(u32),
    #[error("header checksum mismatch: header crc32 {computed:08x}, stored {stored:08x}")]
    HeaderChecksum { stored: u32, computed: u32 },
    #[error("checksum mismatch: payload crc32 {computed:08x}, header says {stored:08x}")]
    Checksum { stored: u32, computed: u32 },
    #[error("trailing bytes: header says {want} bytes, file has {have}")]
    TrailingBytes { want: u64, have: u64 },
    #[error("invalid archive: {0}")]
    Archive(String),
    #[error("inconsistent: {0}")]
    Inconsistent(String),
}

impl Invalid {
    /// One word per class of failure, for tools (`inspect --json`) and
    /// metrics labels.
    pub fn verdict(&self) -> &'static str {
        match self {
            Invalid::Empty => "empty",
            Invalid::Truncated { .. } => "truncated",
            Invalid::Foreign { .. } => "foreign",
            Invalid::UnsupportedVersion(_) => "unsupported-version",
            Invalid::HeaderChecksum { .. } => "header-mismatch",
            Invalid::Checksum { .. } => "checksum-mismatch",
            Invalid::TrailingBytes { .. } => "trailing-bytes",
            Invalid::Archive(_) => "invalid-archive",
            Invalid::Inconsistent(_) => "inconsistent",
        }
    }
}

/// A snapshot ready to be written: header and payload, kept apart so the
/// payload is never copied to sit behind the header.
pub struct Encoded {
    pub header: Header,
    pub payload: AlignedVec,
}

impl Encoded {
    pub fn file_bytes(&self) -> u64 {
        (HEADER_BYTES + self.payload.len()) as u64
    }
}

/// Archives `snap` and computes its header.
///
/// Fails when rkyv cannot serialize: its relative pointers are 32-bit, so
/// one shard's snapshot must stay under 2 GiB.
pub fn encode(snap: &ShardSnapshot) -> Result<Encoded, BoxedError> {
    let payload = rkyv::to_bytes::<BoxedError>(snap)?;
    let header = Header {
        version: FORMAT_VERSION,
        generation: snap.generation,
        shard: snap.shard,
        payload_bytes: payload.len() as u64,
        payload_crc32: crc32fast::hash(&payload),
    };
    Ok(Encoded { header, payload })
}

/// Checks a whole file's bytes and gives access to its archive. `file` must
/// start at a [`PAYLOAD_ALIGN`]-aligned address (a memory map does; a
/// `Vec<u8>` may not, and is then refused as an invalid archive).
pub fn decode(file: &[u8]) -> Result<(Header, &ArchivedShardSnapshot), Invalid> {
    let header = Header::decode(file)?;
    let want = header.file_bytes().unwrap_or(u64::MAX);
    let have = file.len() as u64;
    if have < want {
        return Err(Invalid::Truncated { want, have });
    }
    if have > want {
        return Err(Invalid::TrailingBytes { want, have });
    }
    let payload = &file[HEADER_BYTES..];
    let computed = crc32fast::hash(payload);
    if computed != header.payload_crc32 {
        return Err(Invalid::Checksum {
            stored: header.payload_crc32,
            computed,
        });
    }
    let snap = rkyv::access::<ArchivedShardSnapshot, BoxedError>(payload)
        .map_err(|e| Invalid::Archive(e.to_string()))?;
    if snap.generation != header.generation || snap.shard != header.shard {
        return Err(Invalid::Inconsistent(format!(
            "header says shard {} generation {}, payload says shard {} generation {}",
            header.shard, header.generation, snap.shard, snap.generation
        )));
    }
    if snap.shard >= snap.shards {
        return Err(Invalid::Inconsistent(format!(
            "shard {} of {} shards",
            snap.shard, snap.shards
        )));
    }
    Ok((header, snap))
}

/// Reads and decodes only the header of the file at `path`: what the writer
/// needs to pick a slot, and what a loader needs to order files before
/// checking them whole.
pub fn read_header(path: &Path) -> Result<Header, SnapshotError> {
    let io = |op, source| SnapshotError::Io {
        path: path.to_owned(),
        op,
        source,
    };
    let mut file = File::open(path).map_err(|e| io("open", e))?;
    let mut head = [0u8; HEADER_BYTES];
    let mut len = 0;
    while len < HEADER_BYTES {
        match file.read(&mut head[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io("read", e)),
        }
    }
    Header::decode(&head[..len]).map_err(|reason| SnapshotError::Invalid {
        path: path.to_owned(),
        reason,
    })
}

/// A snapshot file mapped into memory and checked whole.
pub struct SnapshotFile {
    path: PathBuf,
    map: memmap2::Mmap,
    header: Header,
}

impl SnapshotFile {
    /// Maps the file and runs every check of [`decode`]; the archive is then
    /// read in place, without copying.
    ///
    /// Mapping assumes nobody changes the file while it is mapped: the
    /// store never does (it writes a new file and renames it over the old
    /// one, so a map keeps the old inode), but another program truncating it
    /// in place would make reads fault, as with any memory-mapped reader.
    pub fn open(path: &Path) -> Result<Self, SnapshotError> {
        let io = |op, source| SnapshotError::Io {
            path: path.to_owned(),
            op,
            source,
        };
        let invalid = |reason| SnapshotError::Invalid {
            path: path.to_owned(),
            reason,
        };
        let file = File::open(path).map_err(|e| io("open", e))?;
        let len = file.metadata().map_err(|e| io("stat", e))?.len();
        if len == 0 {
            // mmap refuses empty files; say what the operator needs to know.
            return Err(invalid(Invalid::Empty));
        }
        // SAFETY: the map is read-only and private to this value; see the
        // doc above for the one assumption a memory map always makes.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| io("mmap", e))?;
        let (header, _) = decode(&map).map_err(invalid)?;
        Ok(Self {
            path: path.to_owned(),
            map,
            header,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    /// File length in bytes.
    pub fn len(&self) -> u64 {
        self.map.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The archived snapshot, read in place.
    pub fn snapshot(&self) -> &ArchivedShardSnapshot {
        // SAFETY: `open` validated exactly these bytes with rkyv's checked
        // access (`decode`), and the read-only map does not change.
        unsafe { rkyv::access_unchecked::<ArchivedShardSnapshot>(&self.map[HEADER_BYTES..]) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::testutil::sample_shard;

    /// A whole file in an aligned buffer, as a memory map would hold it.
    fn file_of(snap: &ShardSnapshot) -> AlignedVec {
        let enc = encode(snap).unwrap();
        let mut file = AlignedVec::new();
        file.extend_from_slice(&enc.header.encode());
        file.extend_from_slice(&enc.payload);
        file
    }

    fn decoded(file: &[u8]) -> Result<ShardSnapshot, Invalid> {
        let (_, archived) = decode(file)?;
        Ok(rkyv::deserialize::<ShardSnapshot, BoxedError>(archived).unwrap())
    }

    #[test]
    fn round_trip() {
        let snap = sample_shard(1, 4, 3, 7);
        let file = file_of(&snap);
        let (header, archived) = decode(&file).unwrap();
        assert_eq!(
            header,
            Header {
                version: FORMAT_VERSION,
                generation: 7,
                shard: 1,
                payload_bytes: (file.len() - HEADER_BYTES) as u64,
                payload_crc32: crc32fast::hash(&file[HEADER_BYTES..]),
            }
        );
        assert_eq!(archived.instances.len(), 3);
        assert_eq!(decoded(&file).unwrap(), snap);
    }

    #[test]
    fn header_round_trip_and_layout() {
        let h = Header {
            version: FORMAT_VERSION,
            generation: 0x0102_0304_0506_0708,
            shard: 9,
            payload_bytes: 1234,
            payload_crc32: 0xdead_beef,
        };
        let b = h.encode();
        assert_eq!(&b[..8], b"SHLNSNAP");
        assert_eq!(b[8..12], 1u32.to_le_bytes());
        assert_eq!(b[12..16], 64u32.to_le_bytes());
        assert!(b[40..60].iter().all(|&x| x == 0), "reserved bytes are zero");
        assert_eq!(Header::decode(&b), Ok(h));
    }

    #[test]
    fn every_failure_has_its_reason() {
        let snap = sample_shard(0, 1, 2, 3);
        let good = file_of(&snap);
        let aligned = |bytes: &[u8]| {
            let mut v = AlignedVec::<16>::new();
            v.extend_from_slice(bytes);
            v
        };
        let check = |bytes: &[u8], verdict: &str, text: &str| {
            let err = decoded(&aligned(bytes)).unwrap_err();
            assert_eq!(err.verdict(), verdict, "{err}");
            assert!(err.to_string().contains(text), "{err} lacks {text:?}");
        };
        check(b"", "empty", "empty file");
        check(b"SHLN", "truncated", "want 64 bytes, have 4");
        check(&good[..40], "truncated", "want 64 bytes, have 40");
        let want = good.len();
        check(
            &good[..want - 1],
            "truncated",
            &format!("want {want} bytes, have {}", want - 1),
        );
        check(b"{\"hello\": 1}\n", "foreign", "bad magic \"{\\\"hello\\\"");
        check(b"\x7fELF\x02\x01\x01\x00rest", "foreign", "bad magic");

        let mut longer = good.to_vec();
        longer.push(0);
        check(
            &longer,
            "trailing-bytes",
            &format!("header says {want} bytes"),
        );

        let mut v2 = good.to_vec();
        v2[8] = 2;
        check(&v2, "unsupported-version", "unsupported format version 2");

        let mut gen_flip = good.to_vec();
        gen_flip[16] ^= 1;
        check(&gen_flip, "header-mismatch", "header checksum mismatch");

        let mut payload_flip = good.to_vec();
        payload_flip[HEADER_BYTES + 5] ^= 0x40;
        check(
            &payload_flip,
            "checksum-mismatch",
            "checksum mismatch: payload crc32",
        );

        // A payload whose checksum is right but which is no archive: only
        // rkyv's validation catches it.
        let garbage = vec![0xEEu8; 100];
        let header = Header {
            version: FORMAT_VERSION,
            generation: 1,
            shard: 0,
            payload_bytes: 100,
            payload_crc32: crc32fast::hash(&garbage),
        };
        let mut forged = header.encode().to_vec();
        forged.extend_from_slice(&garbage);
        check(&forged, "invalid-archive", "invalid archive: ");

        // A valid archive under a header that disagrees with it.
        let enc = encode(&snap).unwrap();
        let lying = Header {
            generation: 4,
            ..enc.header
        };
        let mut file = lying.encode().to_vec();
        file.extend_from_slice(&enc.payload);
        check(&file, "inconsistent", "payload says shard 0 generation 3");
    }

    #[test]
    fn every_truncation_and_flip_is_refused_without_panic() {
        let good = file_of(&sample_shard(0, 2, 1, 5));
        let mut buf = AlignedVec::<16>::new();
        for len in 0..good.len() {
            buf.clear();
            buf.extend_from_slice(&good[..len]);
            assert!(decode(&buf).is_err(), "truncated to {len}");
        }
        for at in 0..good.len() {
            buf.clear();
            buf.extend_from_slice(&good);
            buf[at] ^= 0x01;
            assert!(decode(&buf).is_err(), "bit flipped at {at}");
        }
    }
}
