//! The autoscaler: `shardline autoscale`, one active controller per fleet
//! that sizes each region to its load — ahead of it when the region's own
//! history says the load is coming — and shrinks a region by moving its
//! running games live to the other nodes instead of waiting for them to
//! empty.
//!
//! # Layout
//! - [`policy`]: a region's `ScalingPolicy` (TOML, `key=value`, JSON in the
//!   directory) and its validation.
//! - [`forecast`]: Holt-Winters over the region's sampled history, with its
//!   error measured.
//! - [`decide`]: one evaluation of one region: a pure function.

pub mod decide;
pub mod forecast;
pub mod policy;
