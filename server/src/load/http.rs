//! A minimal HTTP/1.1 client for the few JSON calls the load tool makes
//! (login, device registration, the reference bundle, the admin API): one
//! connection per request, `Connection: close`, plain `http://` only.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long one request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// A server's base address.
#[derive(Clone, Debug)]
pub struct Http {
    /// `host:port`.
    host: String,
}

impl Http {
    /// Reads a base URL such as `http://127.0.0.1:8080/`.
    pub fn parse(base: &str) -> Result<Http> {
        let Some(rest) = base.strip_prefix("http://") else {
            bail!("the server URL must start with http:// (got {base})");
        };
        let host = rest.split('/').next().unwrap_or_default();
        if host.is_empty() {
            bail!("the server URL names no host: {base}");
        }
        let host = if host.contains(':') {
            host.to_owned()
        } else {
            format!("{host}:80")
        };
        Ok(Http { host })
    }

    /// The base URL, for messages.
    pub fn base(&self) -> String {
        format!("http://{}/", self.host)
    }

    /// The sync socket's URL.
    pub fn ws_url(&self) -> String {
        format!("ws://{}/api/v1/sync", self.host)
    }

    /// A request with an optional bearer token and JSON body: (status, JSON body or Null).
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Result<(u16, Value)> {
        tokio::time::timeout(REQUEST_TIMEOUT, self.exchange(method, path, token, body))
            .await
            .with_context(|| format!("{method} {path}: no answer within {REQUEST_TIMEOUT:?}"))?
            .with_context(|| format!("{method} {path}"))
    }

    /// POST with a JSON body; fails unless the status is `want`.
    pub async fn post(
        &self,
        path: &str,
        token: Option<&str>,
        body: &Value,
        want: u16,
    ) -> Result<Value> {
        let (status, answer) = self.call("POST", path, token, Some(body)).await?;
        if status != want {
            bail!("POST {path}: {status} {answer}");
        }
        Ok(answer)
    }

    /// GET; fails unless the status is 200.
    pub async fn get(&self, path: &str, token: &str) -> Result<Value> {
        let (status, answer) = self.call("GET", path, Some(token), None).await?;
        if status != 200 {
            bail!("GET {path}: {status} {answer}");
        }
        Ok(answer)
    }

    async fn exchange(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Result<(u16, Value)> {
        let mut stream = TcpStream::connect(&self.host).await?;
        let payload = body.map(Value::to_string).unwrap_or_default();
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nAccept: application/json\r\n",
            self.host
        );
        if let Some(t) = token {
            head.push_str(&format!("Authorization: Bearer {t}\r\n"));
        }
        if body.is_some() {
            head.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                payload.len()
            ));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(payload.as_bytes()).await?;
        stream.flush().await?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await?;
        parse_response(&raw)
    }
}

/// Splits an HTTP/1.1 response into its status and JSON body.
fn parse_response(raw: &[u8]) -> Result<(u16, Value)> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("the answer has no end of headers")?;
    let head = std::str::from_utf8(&raw[..split]).context("the headers are not text")?;
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .context("the answer has no status line")?;
    let chunked = lines.any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    let body = &raw[split + 4..];
    let body = if chunked {
        dechunk(body)?
    } else {
        body.to_vec()
    };
    let value = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()))
    };
    Ok((status, value))
}

/// Decodes a chunked body.
fn dechunk(mut body: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = body
            .windows(2)
            .position(|w| w == b"\r\n")
            .context("a chunk has no size line")?;
        let size_text = std::str::from_utf8(&body[..line_end])?;
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .context("a chunk size is not hex")?;
        body = &body[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        let chunk = body.get(..size).context("a chunk is cut short")?;
        out.extend_from_slice(chunk);
        body = body.get(size + 2..).unwrap_or_default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_chunked_answers_are_read() -> Result<()> {
        let plain = b"HTTP/1.1 201 Created\r\ncontent-length: 8\r\n\r\n{\"a\":1}\n";
        assert_eq!(parse_response(plain)?, (201, serde_json::json!({"a": 1})));
        let chunked =
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{\"b\"\r\n3\r\n:2}\r\n0\r\n\r\n";
        assert_eq!(parse_response(chunked)?, (200, serde_json::json!({"b": 2})));
        assert!(Http::parse("https://x").is_err());
        assert_eq!(
            Http::parse("http://127.0.0.1:9/")?.ws_url(),
            "ws://127.0.0.1:9/api/v1/sync"
        );
        Ok(())
    }
}
