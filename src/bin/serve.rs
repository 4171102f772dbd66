//! `xray-reader-serve`: a small static server for the built site on 127.0.0.1 (PORT, default 8080; 0 picks a
//! free port and prints it), serving the precompressed `name.br` sibling to clients that accept Brotli and
//! `name.gz` to those that accept gzip, with the
//! headers the page needs: correct MIME types (wasm), a Content-Security-Policy that forbids remote
//! connections, and cross-origin isolation. Every response carries an ETag and `If-None-Match` gets a 304, so
//! the service worker's install (which revalidates) does not download the wasm and model a second time.
//! Standard library only; for local use and kiosks.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Component, Path, PathBuf};

fn mime(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" => "application/json",
        "webmanifest" => "application/manifest+json",
        "wasm" => "application/wasm",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "svg" => "image/svg+xml",
        "onnx" => "application/octet-stream",
        "md" | "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// Whether an `Accept-Encoding` value accepts `coding`: named without `q=0`, or not named and `*` is accepted.
fn accepts(value: &str, coding: &str) -> bool {
    let mut wildcard = false;
    for item in value.split(',') {
        let mut parts = item.split(';').map(str::trim);
        let name = parts.next().unwrap_or("");
        let refused = parts.any(|p| {
            p.strip_prefix("q=").or_else(|| p.strip_prefix("Q=")).and_then(|q| q.parse::<f32>().ok()) == Some(0.0)
        });
        if name.eq_ignore_ascii_case(coding) {
            return !refused;
        }
        if name == "*" {
            wildcard = !refused;
        }
    }
    wildcard
}

fn respond(mut s: TcpStream, root: &Path) -> std::io::Result<()> {
    let mut line = String::new();
    let mut reader = BufReader::new(s.try_clone()?);
    reader.read_line(&mut line)?;
    let mut accept_encoding = String::new();
    let mut if_none_match = None;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h == "\r\n" || h == "\n" {
            break;
        }
        if let Some((name, value)) = h.split_once(':') {
            if name.trim().eq_ignore_ascii_case("accept-encoding") {
                accept_encoding = value.trim().to_string();
            }
            if name.trim().eq_ignore_ascii_case("if-none-match") {
                if_none_match = Some(value.trim().to_string());
            }
        }
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("");
    let target = parts.next().unwrap_or("/");
    let path = target.split(['?', '#']).next().unwrap_or("/");
    let rel = PathBuf::from(path.trim_start_matches('/'));
    let safe = rel.components().all(|c| matches!(c, Component::Normal(_)));
    let mut file = root.join(&rel);
    if file.is_dir() {
        file = file.join("index.html");
    }
    let headers = "Content-Security-Policy: default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; \
                   connect-src 'self'; img-src 'self' blob: data:; style-src 'self'; worker-src 'self' blob:\r\n\
                   Cross-Origin-Opener-Policy: same-origin\r\nCross-Origin-Embedder-Policy: require-corp\r\n\
                   X-Content-Type-Options: nosniff\r\nCache-Control: no-cache\r\nConnection: close\r\n";
    if method != "GET" && method != "HEAD" {
        write!(s, "HTTP/1.1 405 Method Not Allowed\r\n{headers}Content-Length: 0\r\n\r\n")?;
        return Ok(());
    }
    // a precompressed sibling (the build writes `name.br` and `name.gz` next to every file): Brotli where the
    // client takes it (the wasm is ~30 % smaller than in gzip), else gzip, else the file itself
    let sibling = |ext: &str, coding: &'static str| {
        accepts(&accept_encoding, coding)
            .then(|| std::fs::read(format!("{}.{ext}", file.display())).ok())
            .flatten()
            .map(|b| (b, coding))
    };
    let (body, coding) = match sibling("br", "br").or_else(|| sibling("gz", "gzip")) {
        Some((b, coding)) => (Ok(b), Some(coding)),
        None => (std::fs::read(&file), None),
    };
    let encoding = coding.map(|c| format!("Content-Encoding: {c}\r\n")).unwrap_or_default();
    match (safe, body) {
        (true, Ok(body)) => {
            // the content's hash, per encoding (a strong validator for exactly these bytes)
            let etag = {
                use std::hash::{Hash, Hasher};
                let mut h = std::collections::hash_map::DefaultHasher::new();
                body.hash(&mut h);
                format!("\"{:016x}{}\"", h.finish(), coding.map(|c| format!("-{c}")).unwrap_or_default())
            };
            let matches =
                if_none_match.as_deref().is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
            if matches {
                write!(s, "HTTP/1.1 304 Not Modified\r\n{headers}Vary: Accept-Encoding\r\nETag: {etag}\r\n\r\n")?;
                return Ok(());
            }
            write!(
                s,
                "HTTP/1.1 200 OK\r\n{headers}Vary: Accept-Encoding\r\nETag: {etag}\r\n{encoding}Content-Type: {}\r\nContent-Length: {}\r\n\r\n",
                mime(&file),
                body.len()
            )?;
            if method == "GET" {
                s.write_all(&body)?;
            }
        }
        _ => {
            let body = b"not found";
            write!(
                s,
                "HTTP/1.1 404 Not Found\r\n{headers}Content-Type: text/plain\r\nContent-Length: {}\r\n\r\n",
                body.len()
            )?;
            s.write_all(body)?;
        }
    }
    Ok(())
}

fn main() {
    let root = std::env::args().nth(1).map(PathBuf::from).unwrap_or_else(|| PathBuf::from("www"));
    let port: u16 = match std::env::var("PORT").ok().map(|p| p.parse()) {
        None => 8080,
        Some(Ok(p)) => p,
        Some(Err(e)) => {
            eprintln!("xray-reader-serve: PORT is not a port number: {e}");
            std::process::exit(2);
        }
    };
    let listener = match TcpListener::bind(("127.0.0.1", port)) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("xray-reader-serve: cannot listen on 127.0.0.1:{port}: {e}");
            std::process::exit(1);
        }
    };
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(port);
    println!("Serving {} at http://127.0.0.1:{port}/ (Ctrl-C to stop)", root.display());
    for stream in listener.incoming().flatten() {
        let root = root.clone();
        std::thread::spawn(move || {
            let _ = respond(stream, &root);
        });
    }
}
