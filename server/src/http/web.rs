//! The browser client's files (the PWA's build), served at `/`.
//!
//! The folder is read whole when the server starts, within limits, and only
//! the files found then are ever served: a request names a file of that
//! list or gets 404, so no path from a request reaches the file system.
//! Vite names the files under `assets/` by their content's hash, so they
//! are cached for a year; everything else (`index.html`, the manifest, the
//! service worker) is checked with the server on every load, so a new
//! build reaches the tablets at their next visit.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use axum::body::Body;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::Response;

/// The most files the folder may hold.
pub const MAX_FILES: usize = 1_000;
/// The most bytes the folder's files may hold together.
pub const MAX_BYTES: u64 = 64 * 1024 * 1024;

/// What the page may load and run: its own files, its wasm, and its own
/// server's API and socket.
const CSP: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; \
     style-src 'self'; img-src 'self' blob: data:; connect-src 'self'; \
     worker-src 'self'; manifest-src 'self'; object-src 'none'; \
     base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

/// A folder of files the browser client is made of, read into memory.
#[derive(Debug, Default)]
pub struct WebFiles {
    files: HashMap<String, File>,
}

#[derive(Debug)]
struct File {
    bytes: axum::body::Bytes,
    content_type: &'static str,
    immutable: bool,
}

/// Why the folder cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum WebFilesError {
    /// Reading it failed.
    #[error("cannot read {path}: {source}")]
    Io {
        /// What was being read.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// It holds more than the limits allow.
    #[error("{path} holds more than {MAX_FILES} files or {MAX_BYTES} bytes")]
    TooLarge {
        /// The folder.
        path: PathBuf,
    },
    /// It has no `index.html`.
    #[error("{path} has no index.html: is it a build of the browser client?")]
    NoIndex {
        /// The folder.
        path: PathBuf,
    },
}

/// The media type of a file, by its name's extension.
fn content_type(name: &str) -> &'static str {
    match name.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json") => "application/json",
        Some("webmanifest") => "application/manifest+json",
        Some("wasm") => "application/wasm",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("txt") => "text/plain; charset=utf-8",
        Some("woff2") => "font/woff2",
        _ => "application/octet-stream",
    }
}

impl WebFiles {
    /// Reads every file under `dir`.
    pub fn read(dir: &Path) -> Result<WebFiles, WebFilesError> {
        let mut files = HashMap::new();
        let mut total = 0u64;
        let mut pending = vec![dir.to_path_buf()];
        while let Some(folder) = pending.pop() {
            let io = |source| WebFilesError::Io {
                path: folder.clone(),
                source,
            };
            for entry in std::fs::read_dir(&folder).map_err(io)? {
                let entry = entry.map_err(io)?;
                let path = entry.path();
                let kind = entry.file_type().map_err(io)?;
                if kind.is_dir() {
                    pending.push(path);
                    continue;
                }
                if !kind.is_file() {
                    continue;
                }
                let Ok(relative) = path.strip_prefix(dir) else {
                    continue;
                };
                let Some(name) = relative.to_str().map(|s| s.replace('\\', "/")) else {
                    continue;
                };
                let bytes = std::fs::read(&path).map_err(|source| WebFilesError::Io {
                    path: path.clone(),
                    source,
                })?;
                total += bytes.len() as u64;
                if files.len() >= MAX_FILES || total > MAX_BYTES {
                    return Err(WebFilesError::TooLarge {
                        path: dir.to_path_buf(),
                    });
                }
                files.insert(
                    format!("/{name}"),
                    File {
                        content_type: content_type(&name),
                        immutable: name.starts_with("assets/"),
                        bytes: bytes.into(),
                    },
                );
            }
        }
        if !files.contains_key("/index.html") {
            return Err(WebFilesError::NoIndex {
                path: dir.to_path_buf(),
            });
        }
        Ok(WebFiles { files })
    }

    /// How many files it holds.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// Whether it holds no file.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// The answer to a request for `path`, if it names one of the files
    /// (`/` names `index.html`); `None` otherwise.
    pub fn answer(&self, method: &Method, path: &str) -> Option<Response> {
        if method != Method::GET && method != Method::HEAD {
            return None;
        }
        let key = if path == "/" { "/index.html" } else { path };
        let file = self.files.get(key)?;
        let cache = if file.immutable {
            "public, max-age=31536000, immutable"
        } else {
            "no-cache"
        };
        let body = if method == Method::HEAD {
            Body::empty()
        } else {
            Body::from(file.bytes.clone())
        };
        let mut response = Response::new(body);
        *response.status_mut() = StatusCode::OK;
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(file.content_type),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
        headers.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(file.bytes.len()));
        if file.content_type.starts_with("text/html") {
            headers.insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CSP),
            );
            headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
            headers.insert(
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            );
        }
        Some(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh folder holding `files`, removed when dropped.
    struct Folder(PathBuf);

    impl Folder {
        fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for Folder {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn folder(files: &[(&str, &[u8])]) -> Folder {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "sqm-web-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        for (name, bytes) in files {
            let path = dir.join(name);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(path, bytes).expect("write");
        }
        Folder(dir)
    }

    #[test]
    fn only_the_files_read_at_start_are_served_with_their_caching() {
        let dir = folder(&[
            ("index.html", b"<!doctype html>"),
            ("assets/app-1a2b.js", b"x"),
            ("sw.js", b"y"),
        ]);
        let web = WebFiles::read(dir.path()).expect("reads");
        assert_eq!(web.len(), 3);
        let index = web.answer(&Method::GET, "/").expect("index");
        assert_eq!(index.headers()[header::CACHE_CONTROL], "no-cache");
        assert!(
            index
                .headers()
                .contains_key(header::CONTENT_SECURITY_POLICY)
        );
        let asset = web
            .answer(&Method::GET, "/assets/app-1a2b.js")
            .expect("asset");
        assert_eq!(
            asset.headers()[header::CACHE_CONTROL],
            "public, max-age=31536000, immutable"
        );
        assert_eq!(
            asset.headers()[header::CONTENT_TYPE],
            "text/javascript; charset=utf-8"
        );
        assert_eq!(
            web.answer(&Method::GET, "/sw.js").expect("sw").headers()[header::CACHE_CONTROL],
            "no-cache"
        );
        for path in [
            "/missing.js",
            "/../Cargo.toml",
            "/assets/../index.html",
            "//etc/passwd",
        ] {
            assert!(web.answer(&Method::GET, path).is_none(), "{path}");
        }
        assert!(web.answer(&Method::POST, "/").is_none());
    }

    #[test]
    fn a_folder_without_index_or_over_the_limits_is_refused() {
        let dir = folder(&[("app.js", b"x")]);
        assert!(matches!(
            WebFiles::read(dir.path()),
            Err(WebFilesError::NoIndex { .. })
        ));
        let names: Vec<String> = (0..MAX_FILES).map(|i| format!("f{i}.js")).collect();
        let mut files: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), &b"x"[..])).collect();
        files.push(("index.html", b"i"));
        let dir = folder(&files);
        assert!(matches!(
            WebFiles::read(dir.path()),
            Err(WebFilesError::TooLarge { .. })
        ));
        files.pop();
        files.pop();
        files.push(("index.html", b"i"));
        let dir = folder(&files);
        assert_eq!(
            WebFiles::read(dir.path()).expect("just under").len(),
            MAX_FILES
        );
    }
}
