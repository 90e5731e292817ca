//! Prometheus metrics in its text format, without a metrics library: request
//! counts by route and status, a latency histogram by route, requests in
//! flight, and counters other parts of the server add (sync, later).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;

use super::AppState;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

#[derive(Debug, Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// The server's metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    latency: Mutex<BTreeMap<String, Histogram>>,
    in_flight: AtomicI64,
    counters: Mutex<BTreeMap<&'static str, (&'static str, u64)>>,
    gauges: Mutex<BTreeMap<&'static str, (&'static str, i64)>>,
}

impl Metrics {
    fn record(&self, method: &str, route: &str, status: u16, seconds: f64) {
        if let Ok(mut r) = self.requests.lock() {
            *r.entry((method.to_owned(), route.to_owned(), status))
                .or_default() += 1;
        }
        if let Ok(mut l) = self.latency.lock() {
            let h = l.entry(route.to_owned()).or_default();
            for (i, bound) in BUCKETS.iter().enumerate() {
                if seconds <= *bound {
                    h.counts[i] += 1;
                }
            }
            h.count += 1;
            h.sum += seconds;
        }
    }

    /// Adds to a named counter (created at its first use with its help text).
    pub fn count(&self, name: &'static str, help: &'static str, by: u64) {
        if let Ok(mut c) = self.counters.lock() {
            c.entry(name).or_insert((help, 0)).1 += by;
        }
    }

    /// Sets a named counter kept elsewhere (it only ever grows there).
    pub fn set_count(&self, name: &'static str, help: &'static str, value: u64) {
        if let Ok(mut c) = self.counters.lock() {
            c.insert(name, (help, value));
        }
    }

    /// Moves a named gauge by `delta`.
    pub fn gauge(&self, name: &'static str, help: &'static str, delta: i64) {
        if let Ok(mut g) = self.gauges.lock() {
            g.entry(name).or_insert((help, 0)).1 += delta;
        }
    }

    /// Sets a named gauge.
    pub fn set_gauge(&self, name: &'static str, help: &'static str, value: i64) {
        if let Ok(mut g) = self.gauges.lock() {
            g.insert(name, (help, value));
        }
    }

    /// The metrics in Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP sqm_http_requests_total HTTP requests answered."
        );
        let _ = writeln!(out, "# TYPE sqm_http_requests_total counter");
        if let Ok(r) = self.requests.lock() {
            for ((method, route, status), n) in r.iter() {
                let _ = writeln!(
                    out,
                    "sqm_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {n}"
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP sqm_http_request_duration_seconds Time to answer an HTTP request."
        );
        let _ = writeln!(out, "# TYPE sqm_http_request_duration_seconds histogram");
        if let Ok(l) = self.latency.lock() {
            for (route, h) in l.iter() {
                for (i, bound) in BUCKETS.iter().enumerate() {
                    let _ = writeln!(
                        out,
                        "sqm_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {}",
                        h.counts[i]
                    );
                }
                let _ = writeln!(
                    out,
                    "sqm_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                    h.count
                );
                let _ = writeln!(
                    out,
                    "sqm_http_request_duration_seconds_sum{{route=\"{route}\"}} {}",
                    h.sum
                );
                let _ = writeln!(
                    out,
                    "sqm_http_request_duration_seconds_count{{route=\"{route}\"}} {}",
                    h.count
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP sqm_http_requests_in_flight HTTP requests being answered now."
        );
        let _ = writeln!(out, "# TYPE sqm_http_requests_in_flight gauge");
        let _ = writeln!(
            out,
            "sqm_http_requests_in_flight {}",
            self.in_flight.load(Ordering::Relaxed)
        );
        if let Ok(c) = self.counters.lock() {
            for (name, (help, n)) in c.iter() {
                let _ = writeln!(
                    out,
                    "# HELP {name} {help}\n# TYPE {name} counter\n{name} {n}"
                );
            }
        }
        if let Ok(g) = self.gauges.lock() {
            for (name, (help, n)) in g.iter() {
                let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {n}");
            }
        }
        out
    }
}

/// The method as a label: the standard ones by name, any other as `OTHER`
/// (HTTP lets a client invent methods, and each would be a series of its own).
fn method_label(method: &Method) -> &'static str {
    const KNOWN: [Method; 9] = [
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::PATCH,
        Method::OPTIONS,
        Method::CONNECT,
        Method::TRACE,
    ];
    const NAMES: [&str; 9] = [
        "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE",
    ];
    KNOWN
        .iter()
        .position(|m| m == method)
        .map_or("OTHER", |i| NAMES[i])
}

/// Middleware: counts and times every request by its route pattern (never
/// the raw path) and its method (never an invented one).
pub async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = method_label(req.method());
    let started = Instant::now();
    state.metrics.in_flight.fetch_add(1, Ordering::Relaxed);
    let response = next.run(req).await;
    state.metrics.in_flight.fetch_sub(1, Ordering::Relaxed);
    state.metrics.record(
        method,
        &route,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invented_methods_share_one_label() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::TRACE), "TRACE");
        for name in ["FOO", "get", "PROPFIND"] {
            let m = Method::from_bytes(name.as_bytes()).unwrap_or(Method::GET);
            assert_eq!(method_label(&m), "OTHER", "{name}");
        }
    }
}
