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
//! - [`store`]: what the autoscaler keeps in the directory (lease,
//!   policies, history, overrides, cooldowns) and its Redis connection.
//! - [`provider`]: acting: `process` command templates on their own threads.
//! - [`agones`]: the answer to Agones's FleetAutoscaler webhook (pure).
//! - [`status`]: the controller's figures, `/metrics` and `/status`.
//! - [`http`]: the controller's listener (metrics, status, webhook).
//! - [`controller`]: the loop: lease, read, sample, forecast, decide, act.
//! - [`cli`]: `shardline autoscale` and `shardline fleet config policy`.

pub mod agones;
pub mod cli;
pub mod controller;
pub mod decide;
pub mod forecast;
pub mod http;
pub mod policy;
pub mod provider;
pub mod status;
pub mod store;
