//! Who may play: signed join tickets and the node's record of the ones
//! already used.
//!
//! - [`ticket`]: the ticket format, minting and verification (pure).
//! - [`replay`]: single-use enforcement across the node's shards.
//! - [`cli`]: `shardline ticket issue`.

pub mod cli;
pub mod replay;
pub mod ticket;
