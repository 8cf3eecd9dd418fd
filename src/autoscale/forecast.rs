//! A region's load forecast: additive Holt-Winters (level, damped trend and
//! a seasonal cycle — a day by default) over the region's sampled history,
//! with its own error measured as it goes. Pure code: the history is a
//! parameter, so a controller that takes over after a failover rebuilds the
//! same forecast from the same history in Redis.
//!
//! Each sample is the peak load of one `sample_ms` bucket; bucket numbers
//! are wall-clock time / `sample_ms`, so a bucket's place in the season
//! (`bucket % season`) is the same on every controller and across gaps.
//!
//! Error: at every step the model also forecasts `horizon` buckets ahead;
//! when that bucket arrives, the absolute miss is recorded. The error is
//! the sum of the last `window` misses over the sum of the loads they
//! forecast (weighted absolute percentage error). A forecast whose error is
//! above the policy's `error_max` is not used: the region is then scaled
//! reactively until the forecasts are right again.

/// Smoothing of the level (share of each new sample).
const ALPHA: f64 = 0.5;
/// Smoothing of the trend.
const BETA: f64 = 0.1;
/// Smoothing of the seasonal slots.
const GAMMA: f64 = 0.3;
/// Trend damping per step ahead: a ramp is not extrapolated forever.
const PHI: f64 = 0.9;
/// Forecasts measured before the error is trusted at all.
const ERROR_SAMPLES_MIN: usize = 5;

/// One history sample: the peak load (players) of bucket `bucket`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub bucket: u64,
    pub load: f64,
}

impl Sample {
    /// The stored form, `bucket:load`.
    pub fn encode(&self) -> String {
        format!("{}:{}", self.bucket, self.load)
    }

    pub fn decode(s: &str) -> Option<Sample> {
        let (b, l) = s.split_once(':')?;
        let load: f64 = l.parse().ok()?;
        (load.is_finite() && load >= 0.0).then_some(Sample {
            bucket: b.parse().ok()?,
            load,
        })
    }
}

/// What the model says about the next `horizon` buckets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Forecast {
    /// The largest load forecast over the horizon (players, ≥ 0).
    pub peak: f64,
    /// Weighted absolute error of the last forecasts (0.1 = 10 %), once
    /// enough were measured.
    pub error: Option<f64>,
    /// A whole season was seen: the seasonal slots are learnt.
    pub seasonal: bool,
    /// Samples the model learnt from.
    pub samples: usize,
}

impl Forecast {
    /// Good enough to scale on: its error is measured and at most `max`.
    pub fn usable(&self, error_max: f64) -> bool {
        self.error.is_some_and(|e| e <= error_max)
    }
}

/// The model's state after learning a history.
struct Model {
    season: usize,
    level: f64,
    trend: f64,
    /// By `bucket % season`.
    slots: Vec<f64>,
    seasonal: bool,
}

impl Model {
    fn ahead(&self, last_bucket: u64, k: usize) -> f64 {
        let mut damp = 0.0;
        let mut f = 1.0;
        for _ in 0..k {
            f *= PHI;
            damp += f;
        }
        let slot = if self.seasonal {
            self.slots[((last_bucket + k as u64) % self.season as u64) as usize]
        } else {
            0.0
        };
        (self.level + damp * self.trend + slot).max(0.0)
    }

    fn learn(&mut self, bucket: u64, x: f64) {
        let i = (bucket % self.season as u64) as usize;
        let s = if self.seasonal { self.slots[i] } else { 0.0 };
        let prev_level = self.level;
        self.level = ALPHA * (x - s) + (1.0 - ALPHA) * (prev_level + PHI * self.trend);
        self.trend = BETA * (self.level - prev_level) + (1.0 - BETA) * PHI * self.trend;
        if self.seasonal {
            self.slots[i] = GAMMA * (x - self.level) + (1.0 - GAMMA) * s;
        }
    }
}

/// Learns `history` (any order; duplicates keep the larger load; gaps are
/// filled with the last load) and forecasts the next `horizon` buckets
/// after the last sample. `None` without any sample.
pub fn forecast(
    history: &[Sample],
    season: usize,
    horizon: usize,
    window: usize,
) -> Option<Forecast> {
    let series = fill_gaps(history)?;
    let season = season.max(2);
    let horizon = horizon.max(1);
    let (first_bucket, values) = series;
    let mut model = Model {
        season,
        level: values[0],
        trend: 0.0,
        slots: vec![0.0; season],
        seasonal: false,
    };
    // With a whole season: start from its mean, each slot its offset.
    let mut start = 1;
    if values.len() >= season {
        let mean = values[..season].iter().sum::<f64>() / season as f64;
        for (k, x) in values[..season].iter().enumerate() {
            let b = first_bucket + k as u64;
            model.slots[(b % season as u64) as usize] = x - mean;
        }
        model.level = mean;
        model.seasonal = true;
        start = season;
    }
    // Forecasts made `horizon` steps back, waiting for their bucket.
    let mut pending: std::collections::VecDeque<(usize, f64)> = Default::default();
    let mut misses: std::collections::VecDeque<(f64, f64)> = Default::default();
    for (k, &x) in values.iter().enumerate().skip(start) {
        let bucket = first_bucket + k as u64;
        while let Some(&(due, predicted)) = pending.front() {
            if due > k {
                break;
            }
            pending.pop_front();
            if due == k {
                misses.push_back(((x - predicted).abs(), x));
                if misses.len() > window.max(1) {
                    misses.pop_front();
                }
            }
        }
        model.learn(bucket, x);
        pending.push_back((k + horizon, model.ahead(bucket, horizon)));
    }
    let last_bucket = first_bucket + values.len() as u64 - 1;
    let peak = (1..=horizon)
        .map(|k| model.ahead(last_bucket, k))
        .fold(0.0, f64::max);
    let error = (misses.len() >= ERROR_SAMPLES_MIN.min(window.max(1))).then(|| {
        let missed: f64 = misses.iter().map(|m| m.0).sum();
        let actual: f64 = misses.iter().map(|m| m.1).sum();
        missed / actual.max(1.0)
    });
    Some(Forecast {
        peak,
        error,
        seasonal: model.seasonal,
        samples: values.len(),
    })
}

/// The history as one value per bucket from the first to the last.
fn fill_gaps(history: &[Sample]) -> Option<(u64, Vec<f64>)> {
    let mut sorted: Vec<Sample> = history.to_vec();
    sorted.sort_by_key(|s| s.bucket);
    let first = sorted.first()?.bucket;
    let last = sorted.last()?.bucket;
    // The history is bounded (HISTORY_SAMPLES_MAX) but its buckets could
    // span a long outage: keep only the newest stretch of that many.
    let span_max = crate::autoscale::policy::HISTORY_SAMPLES_MAX;
    let first = first.max(last.saturating_sub(span_max - 1));
    let mut values = vec![f64::NAN; (last - first + 1) as usize];
    for s in sorted.iter().filter(|s| s.bucket >= first) {
        let v = &mut values[(s.bucket - first) as usize];
        *v = if v.is_nan() { s.load } else { v.max(s.load) };
    }
    let mut prev = values.iter().copied().find(|v| !v.is_nan())?;
    for v in &mut values {
        if v.is_nan() {
            *v = prev;
        }
        prev = *v;
    }
    Some((first, values))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A day of 48 buckets: low at night, a peak in the evening.
    fn daily(bucket: u64) -> f64 {
        let phase = (bucket % 48) as f64 / 48.0 * std::f64::consts::TAU;
        300.0 - 250.0 * phase.cos()
    }

    fn history(from: u64, to: u64, f: impl Fn(u64) -> f64) -> Vec<Sample> {
        (from..to)
            .map(|b| Sample {
                bucket: b,
                load: f(b),
            })
            .collect()
    }

    #[test]
    fn the_daily_cycle_is_learnt_and_forecast_ahead() {
        // Two days learnt; now the bucket before the morning ramp.
        let h = history(0, 96 + 10, daily);
        let f = forecast(&h, 48, 4, 30).unwrap();
        assert!(f.seasonal);
        let truth = (1..=4).map(|k| daily(105 + k)).fold(0.0, f64::max);
        assert!(
            (f.peak - truth).abs() < truth * 0.1,
            "forecast {} vs truth {truth}",
            f.peak
        );
        // The load now is below what is coming: the forecast sees it.
        assert!(f.peak > daily(105));
        let e = f.error.unwrap();
        assert!(e < 0.1, "error {e}");
        assert!(f.usable(0.3));
    }

    #[test]
    fn without_a_season_the_trend_is_followed() {
        let h = history(0, 20, |b| 100.0 + 10.0 * b as f64);
        let f = forecast(&h, 48, 3, 30).unwrap();
        assert!(!f.seasonal);
        assert!(
            f.peak > 290.0,
            "a rising load is forecast to rise: {}",
            f.peak
        );
    }

    #[test]
    fn a_forecast_that_keeps_missing_is_not_usable() {
        // Noise the model cannot learn (a fixed pseudo-random sequence).
        let h = history(0, 100, |b| {
            let x = b
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((x >> 33) % 1000) as f64
        });
        let f = forecast(&h, 48, 3, 30).unwrap();
        assert!(f.error.unwrap() > 0.3, "{f:?}");
        assert!(!f.usable(0.3));
        // Too few forecasts measured: not usable either.
        let f = forecast(&history(0, 3, |_| 5.0), 48, 3, 30).unwrap();
        assert_eq!(f.error, None);
        assert!(!f.usable(0.3));
    }

    #[test]
    fn gaps_and_duplicates_are_handled() {
        let h = vec![
            Sample {
                bucket: 10,
                load: 5.0,
            },
            Sample {
                bucket: 10,
                load: 7.0,
            },
            Sample {
                bucket: 14,
                load: 9.0,
            },
        ];
        let (first, values) = fill_gaps(&h).unwrap();
        assert_eq!(first, 10);
        assert_eq!(values, vec![7.0, 7.0, 7.0, 7.0, 9.0]);
        assert!(forecast(&[], 48, 3, 30).is_none());
        assert_eq!(
            Sample::decode("12:3.5"),
            Some(Sample {
                bucket: 12,
                load: 3.5
            })
        );
        assert_eq!(
            Sample::decode(
                &Sample {
                    bucket: 1,
                    load: 2.0
                }
                .encode()
            )
            .unwrap()
            .load,
            2.0
        );
        assert_eq!(Sample::decode("x"), None);
        assert_eq!(Sample::decode("1:-3"), None);
    }
}
