//! Agones's FleetAutoscaler webhook, answered from the controller's last
//! decision. Pure code: the request body and the controller's state in, the
//! HTTP status and body out.
//!
//! Agones POSTs a `FleetAutoscaleReview` whose `request` carries `uid`, the
//! Fleet's `name` and `namespace`, and its `status` (`replicas`,
//! `readyReplicas`, `allocatedReplicas`, …), and reads back the same review
//! with `response: {uid, scale, replicas}`: `scale: false` leaves the Fleet
//! as it is. The Fleet is matched to a region by the policy's
//! `provider.fleet`. While the controller is on standby, or the directory is
//! unreachable, or the region has no decision yet, the answer is
//! `scale: false` with the Fleet's own replica count: never scale blind.

use serde::Deserialize;
use serde_json::{json, Value};

use super::status::Status;

/// Largest review body accepted, bytes (a review is well under 4 KiB;
/// Agones's Fleet status with counters and lists stays far below this).
pub const REVIEW_BYTES_MAX: usize = 64 * 1024;

#[derive(Debug, Deserialize)]
struct Review {
    request: Request,
}

#[derive(Debug, Deserialize)]
struct Request {
    uid: String,
    name: String,
    #[serde(default)]
    #[allow(dead_code)] // documented by Agones; the Fleet is named by `name`
    namespace: String,
    status: FleetStatus,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct FleetStatus {
    replicas: i32,
    #[serde(default)]
    #[allow(dead_code)]
    ready_replicas: i32,
    #[serde(default)]
    #[allow(dead_code)]
    allocated_replicas: i32,
}

/// The answer to one webhook call: (HTTP status, JSON body).
pub fn answer(body: &[u8], status: &Status) -> (u16, Value) {
    if body.len() > REVIEW_BYTES_MAX {
        return (
            413,
            json!({"error": format!("over {REVIEW_BYTES_MAX} bytes")}),
        );
    }
    let raw: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => return (400, json!({"error": format!("not JSON: {e}")})),
    };
    let review: Review = match serde_json::from_value(raw.clone()) {
        Ok(r) => r,
        Err(e) => {
            return (
                400,
                json!({"error": format!("not a FleetAutoscaleReview with a request: {e}")}),
            )
        }
    };
    let req = review.request;
    if req.uid.is_empty() || req.status.replicas < 0 {
        return (
            400,
            json!({"error": "request.uid must be set and request.status.replicas ≥ 0"}),
        );
    }
    let Some(region) = status.region_of_fleet(&req.name) else {
        return (
            404,
            json!({"error": format!("no region's policy names Agones Fleet {:?} (provider.fleet)", req.name)}),
        );
    };
    let current = req.status.replicas;
    let replicas = match status.agones_replicas(&region) {
        Some(n) => n.min(i32::MAX as u32) as i32,
        None => current,
    };
    let response = json!({
        "uid": req.uid,
        "scale": replicas != current,
        "replicas": replicas,
    });
    (
        200,
        json!({"request": raw["request"], "response": response}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::autoscale::decide::{Action, Decision};
    use crate::autoscale::policy::{ProviderPolicy, ScalingPolicy};

    fn status(desired: u32, active: bool) -> Status {
        let mut s = Status::new(false);
        s.active = active;
        s.directory_up = true;
        let mut p = ScalingPolicy::with_max(10);
        p.provider = ProviderPolicy::Agones {
            fleet: "shardline-eu".into(),
        };
        s.set_policy("eu", p);
        s.record(Decision {
            region: "eu".into(),
            current: 3,
            desired,
            action: Action::Up {
                count: desired.saturating_sub(3),
            },
            reason: String::new(),
            load: 0,
            capacity: 0,
            forecast: None,
            forecast_error: None,
            forecast_used: false,
            cooldown_left_ms: 0,
        });
        s
    }

    /// The request Agones documents (FleetAutoscaleReview.request).
    const REVIEW: &str = r#"{
      "request": {
        "uid": "a1b2c3",
        "name": "shardline-eu",
        "namespace": "default",
        "status": {"replicas": 3, "readyReplicas": 3, "reservedReplicas": 0, "allocatedReplicas": 0}
      }
    }"#;

    #[test]
    fn a_documented_review_gets_scale_and_replicas() {
        let (code, body) = answer(REVIEW.as_bytes(), &status(5, true));
        assert_eq!(code, 200, "{body}");
        assert_eq!(
            body["response"],
            json!({"uid": "a1b2c3", "scale": true, "replicas": 5})
        );
        assert_eq!(body["request"]["name"], "shardline-eu");
        let (_, body) = answer(REVIEW.as_bytes(), &status(3, true));
        assert_eq!(body["response"]["scale"], false);
    }

    #[test]
    fn a_scale_down_removes_one_game_server_at_a_time() {
        let mut s = status(1, true);
        let mut d = s.region("eu").decision.clone().unwrap();
        d.action = Action::Down {
            node: "eu-3".into(),
        };
        s.record(d);
        let (_, body) = answer(REVIEW.as_bytes(), &s);
        assert_eq!(
            body["response"],
            json!({"uid": "a1b2c3", "scale": true, "replicas": 2})
        );
    }

    #[test]
    fn standby_or_blind_never_scales() {
        let (code, body) = answer(REVIEW.as_bytes(), &status(5, false));
        assert_eq!(code, 200);
        assert_eq!(
            body["response"],
            json!({"uid": "a1b2c3", "scale": false, "replicas": 3})
        );
        let mut s = status(5, true);
        s.directory_up = false;
        let (_, body) = answer(REVIEW.as_bytes(), &s);
        assert_eq!(body["response"]["scale"], false);
    }

    #[test]
    fn malformed_reviews_are_refused_with_400() {
        let s = status(5, true);
        for bad in [
            "",
            "{",
            "[]",
            r#"{"response": {}}"#,
            r#"{"request": {"uid": "x", "name": "shardline-eu"}}"#,
            r#"{"request": {"uid": "x", "name": "shardline-eu", "status": {"replicas": "three"}}}"#,
            r#"{"request": {"uid": "", "name": "shardline-eu", "status": {"replicas": 1}}}"#,
            r#"{"request": {"uid": "x", "name": "shardline-eu", "status": {"replicas": -1}}}"#,
        ] {
            let (code, body) = answer(bad.as_bytes(), &s);
            assert_eq!(code, 400, "{bad:?} → {body}");
        }
        let unknown = REVIEW.replace("shardline-eu", "other");
        assert_eq!(answer(unknown.as_bytes(), &s).0, 404);
        let big = vec![b' '; REVIEW_BYTES_MAX + 1];
        assert_eq!(answer(&big, &s).0, 413);
    }
}
