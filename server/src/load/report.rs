//! The load tool's report: readable lines with every figure, then one
//! `key=value` record for scripts as the very last line.

use super::live::percentile;

/// Every figure of a run.
#[derive(Debug, Default)]
pub struct Report {
    /// Tablets simulated.
    pub tablets: usize,
    /// Whether every tablet converged to the server's state.
    pub converged: bool,
    /// Changes made offline (leads and partners).
    pub changes: usize,
    /// Seconds from the first reconnect to the last tablet converged.
    pub seconds: f64,
    /// Bytes sent by the tablets during the reconnect phase.
    pub bytes_up: u64,
    /// Bytes received by the tablets during the reconnect phase.
    pub bytes_down: u64,
    /// Frames the tablets sent and received in the reconnect phase.
    pub frames: (u64, u64),
    /// Server CPU seconds during the reconnect phase (own server only).
    pub server_cpu_s: Option<f64>,
    /// This tool's CPU seconds during the reconnect phase.
    pub tool_cpu_s: Option<f64>,
    /// Changes the server stored during the phase, by its database (own server only).
    pub stored: Option<i64>,
    /// Quarantined batches in the server's database (own server only).
    pub quarantined: Option<i64>,
    /// Plain Automerge: microseconds to apply one change.
    pub raw_apply_us: f64,
    /// sync-core's validator: microseconds to judge and apply one change.
    pub validate_us: f64,
    /// Plain Automerge sync: bytes for the same exchange.
    pub plain_sync_bytes: u64,
    /// Live samples, ms.
    pub live_ms: Vec<f64>,
    /// Live samples that never arrived.
    pub live_lost: usize,
    /// Connections open during the live phase.
    pub live_connections: usize,
    /// The server's peak resident memory (own server only).
    pub peak_rss_mib: Option<f64>,
    /// The server's memory with tablets signed in and with every document open (own server only).
    pub memory: Option<Memory>,
    /// What went wrong.
    pub failures: Vec<String>,
}

/// The server's resident memory around the reconnect phase.
#[derive(Debug, Clone, Copy, Default)]
pub struct Memory {
    /// With every tablet signed in and no document open (before the download).
    pub signed_in_mib: f64,
    /// The highest seen while the tablets reconnected (every document open).
    pub reconnect_peak_mib: f64,
    /// Documents open at once in the reconnect phase.
    pub open_documents: usize,
    /// Once converged and quiet: the memory, and the documents gone cold.
    pub quiet: Option<(f64, usize)>,
}

impl Memory {
    /// What each open document adds to the server's memory at the peak.
    pub fn kib_per_document(&self) -> f64 {
        self.kib_per_document_at(self.reconnect_peak_mib)
    }

    /// What each open document adds to the server's memory at `mib`.
    pub fn kib_per_document_at(&self, mib: f64) -> f64 {
        per(
            (mib - self.signed_in_mib).max(0.0) * 1024.0,
            self.open_documents as f64,
        )
    }
}

fn per(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { 0.0 }
}

impl Report {
    fn bytes_per_change(&self) -> f64 {
        per(
            (self.bytes_up + self.bytes_down) as f64,
            self.changes as f64,
        )
    }

    fn server_us_per_change(&self) -> Option<f64> {
        self.server_cpu_s.map(|s| per(s * 1e6, self.changes as f64))
    }

    /// The readable lines.
    pub fn lines(&self) -> Vec<String> {
        let n = self.changes as f64;
        let mut out = vec![format!(
            "reconnect: {} in {:.2} s: {} changes, {:.0} changes stored per second",
            if self.converged {
                "every tablet converged"
            } else {
                "NOT CONVERGED"
            },
            self.seconds,
            self.changes,
            per(n, self.seconds)
        )];
        out.push(format!(
            "  wire: {:.2} MB up, {:.2} MB down = {:.1} bytes per change; {} frames up, {} down",
            self.bytes_up as f64 / 1e6,
            self.bytes_down as f64 / 1e6,
            self.bytes_per_change(),
            self.frames.0,
            self.frames.1
        ));
        match (self.server_cpu_s, self.server_us_per_change()) {
            (Some(s), Some(us)) => out.push(format!(
                "  server CPU: {s:.2} s = {:.3} s per 1,000 changes ({us:.1} us per change)",
                s * 1000.0 / n.max(1.0)
            )),
            _ => out.push("  server CPU: n/a (the server runs elsewhere)".into()),
        }
        if let Some(t) = self.tool_cpu_s {
            out.push(format!(
                "  load tool CPU (the tablets' side, same machine): {t:.2} s"
            ));
        }
        if let Some(s) = self.stored {
            out.push(format!(
                "  server database: {s} changes stored in the phase, {} quarantined batches",
                self.quarantined.unwrap_or(0)
            ));
        }
        out.push(format!(
            "baseline: plain Automerge applies a change in {:.2} us; server CPU per change is {} that",
            self.raw_apply_us,
            self.server_us_per_change()
                .map_or("n/a".into(), |us| format!("{:.1}x", per(us, self.raw_apply_us)))
        ));
        out.push(format!(
            "baseline: the server's validator judges and applies a change in {:.2} us ({:.2}x plain apply; its copy of the document included)",
            self.validate_us,
            per(self.validate_us, self.raw_apply_us)
        ));
        out.push(format!(
            "baseline: plain Automerge sync moves {:.1} bytes per change ({:.2} MB); this server's wire is {:.2}x that",
            per(self.plain_sync_bytes as f64, n),
            self.plain_sync_bytes as f64 / 1e6,
            per((self.bytes_up + self.bytes_down) as f64, self.plain_sync_bytes as f64)
        ));
        out.push(format!(
            "live: {} samples over {} connections, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms{}",
            self.live_ms.len(),
            self.live_connections,
            percentile(&self.live_ms, 50.0),
            percentile(&self.live_ms, 99.0),
            percentile(&self.live_ms, 100.0),
            if self.live_lost > 0 {
                format!(", {} never arrived", self.live_lost)
            } else {
                String::new()
            }
        ));
        if let Some(m) = &self.memory {
            out.push(format!(
                "server memory (VmRSS): {:.1} MiB with every tablet signed in, at most {:.1} MiB with {} documents open = {:.1} KiB per open document",
                m.signed_in_mib,
                m.reconnect_peak_mib,
                m.open_documents,
                m.kib_per_document()
            ));
            if let Some((mib, cold)) = m.quiet {
                out.push(format!(
                    "server memory once quiet (VmRSS, after the live phase, tablets connected): {:.1} MiB with {} of the {} documents cold = {:.1} KiB per open document",
                    mib,
                    cold,
                    m.open_documents,
                    m.kib_per_document_at(mib)
                ));
            }
        }
        out.push(match self.peak_rss_mib {
            Some(m) => format!(
                "server peak memory (VmHWM, whole run, sign-ins' argon2 included): {m:.1} MiB"
            ),
            None => "server peak memory: n/a (the server runs elsewhere)".into(),
        });
        for f in &self.failures {
            out.push(format!("problem: {f}"));
        }
        out
    }

    /// The record for scripts.
    pub fn record(&self) -> String {
        let us = self.server_us_per_change().unwrap_or(0.0);
        format!(
            "converged={} tablets={} changes={} seconds={:.3} changes_per_s={:.1} bytes_per_change={:.1} \
             server_cpu_us_per_change={:.2} raw_apply_us_per_change={:.3} cpu_ratio={:.2} live_p99_ms={:.2} peak_rss_mib={:.1}",
            self.converged,
            self.tablets,
            self.changes,
            self.seconds,
            per(self.changes as f64, self.seconds),
            self.bytes_per_change(),
            us,
            self.raw_apply_us,
            per(us, self.raw_apply_us),
            percentile(&self.live_ms, 99.0),
            self.peak_rss_mib.unwrap_or(0.0)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_record_has_every_key_with_a_number() {
        let r = Report {
            tablets: 2,
            converged: true,
            changes: 100,
            seconds: 2.0,
            server_cpu_s: Some(0.5),
            raw_apply_us: 10.0,
            live_ms: vec![1.0, 2.0, 3.0],
            ..Report::default()
        };
        let line = r.record();
        assert!(line.starts_with("converged=true tablets=2 changes=100 seconds=2.000"));
        assert!(line.contains("server_cpu_us_per_change=5000.00"));
        assert!(line.contains("cpu_ratio=500.00"));
        assert!(line.contains("live_p99_ms=3.00"));
        for kv in line.split(' ').skip(1) {
            let (_, v) = kv.split_once('=').unwrap_or_default();
            assert!(v.parse::<f64>().is_ok(), "{kv}");
        }
    }
}
