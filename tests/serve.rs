//! The local static server (`xray-reader-serve`): the security headers the page relies on, Brotli and gzip siblings,
//! MIME types, and no escape from the site folder.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};

struct Server {
    child: Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

fn serve(root: &std::path::Path) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_xray-reader-serve"))
        .arg(root)
        .env("PORT", "0")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let port = line.rsplit(':').next().unwrap().split('/').next().unwrap().parse().unwrap();
    Server { child, port }
}

/// (status line, headers lower-cased, body)
fn get(port: u16, path: &str, extra: &str) -> (String, String, Vec<u8>) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}\r\n").unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let (status, headers) = head.split_once("\r\n").unwrap();
    (status.to_string(), headers.to_ascii_lowercase(), raw[split + 4..].to_vec())
}

#[test]
fn serves_the_site_with_csp_isolation_compression_and_nothing_outside_it() {
    let dir = tempfile::tempdir().unwrap();
    let site = dir.path().join("site");
    std::fs::create_dir_all(site.join("pkg")).unwrap();
    std::fs::write(site.join("index.html"), "<!doctype html><title>t</title>").unwrap();
    std::fs::write(site.join("pkg/x.wasm"), b"\0asm\x01\0\0\0").unwrap();
    std::fs::write(site.join("app.js"), "plain").unwrap();
    std::fs::write(site.join("app.js.gz"), b"\x1f\x8b pretend-gzip").unwrap();
    std::fs::write(site.join("style.css"), "plain css").unwrap();
    std::fs::write(site.join("style.css.gz"), b"\x1f\x8b pretend-gzip css").unwrap();
    std::fs::write(site.join("style.css.br"), b"pretend-brotli css").unwrap();
    std::fs::write(dir.path().join("secret.txt"), "outside the site").unwrap();
    let server = serve(&site);

    let (status, headers, body) = get(server.port, "/", "");
    assert!(status.contains("200"), "{status}");
    assert_eq!(body, b"<!doctype html><title>t</title>");
    assert!(headers.contains("content-type: text/html"));
    // remote connections, third-party scripts and inline scripts are forbidden; wasm may compile
    assert!(headers.contains("content-security-policy: default-src 'self'; script-src 'self' 'wasm-unsafe-eval'"));
    assert!(headers.contains("connect-src 'self'"));
    assert!(headers.contains("cross-origin-opener-policy: same-origin"));
    assert!(headers.contains("cross-origin-embedder-policy: require-corp"));

    let (_, headers, _) = get(server.port, "/pkg/x.wasm", "");
    assert!(headers.contains("content-type: application/wasm"));

    // the precompressed sibling goes only to clients that accept gzip
    let (_, headers, body) = get(server.port, "/app.js", "Accept-Encoding: gzip, br\r\n");
    assert!(headers.contains("content-encoding: gzip"));
    assert!(headers.contains("content-type: text/javascript"));
    assert_eq!(&body[..2], b"\x1f\x8b");
    let (_, headers, body) = get(server.port, "/app.js", "");
    assert!(!headers.contains("content-encoding"));
    assert_eq!(body, b"plain");

    // revalidation: the ETag comes back as If-None-Match and gets a 304 without a body (the service worker's
    // install revalidates, so a first visit downloads the wasm and model once)
    let (_, headers, _) = get(server.port, "/pkg/x.wasm", "");
    let etag = headers.lines().find_map(|l| l.strip_prefix("etag: ")).expect("an etag").to_string();
    let (status, _, body) = get(server.port, "/pkg/x.wasm", &format!("If-None-Match: {etag}\r\n"));
    assert!(status.contains("304"), "{status}");
    assert!(body.is_empty());
    let (status, _, body) = get(server.port, "/pkg/x.wasm", "If-None-Match: \"stale\"\r\n");
    assert!(status.contains("200") && body.starts_with(b"\0asm"), "{status}");
    // the gzip variant has its own validator
    let (_, gz_headers, _) = get(server.port, "/app.js", "Accept-Encoding: gzip\r\n");
    let (_, plain_headers, _) = get(server.port, "/app.js", "");
    let tag = |h: &str| h.lines().find_map(|l| l.strip_prefix("etag: ")).unwrap().to_string();
    assert_ne!(tag(&gz_headers), tag(&plain_headers));

    // Brotli where the build wrote a `.br` and the client takes it (as browsers do), gzip for a client that
    // takes only gzip or refuses br with q=0, gzip again where there is no `.br`; each copy its own validator
    let (_, br_headers, body) = get(server.port, "/style.css", "Accept-Encoding: gzip, deflate, br, zstd\r\n");
    assert!(br_headers.contains("content-encoding: br"), "{br_headers}");
    assert!(br_headers.contains("content-type: text/css"));
    assert_eq!(body, b"pretend-brotli css");
    for only_gzip in ["gzip", "gzip, br;q=0", "br;q=0.0, gzip;q=0.5", "br;q=0, *"] {
        let (_, headers, body) = get(server.port, "/style.css", &format!("Accept-Encoding: {only_gzip}\r\n"));
        assert!(headers.contains("content-encoding: gzip"), "{only_gzip}: {headers}");
        assert_eq!(body, b"\x1f\x8b pretend-gzip css");
    }
    let (_, gz_css_headers, _) = get(server.port, "/style.css", "Accept-Encoding: gzip\r\n");
    assert_ne!(tag(&br_headers), tag(&gz_css_headers));
    let (_, headers, body) = get(server.port, "/style.css", "Accept-Encoding: br;q=0, gzip;q=0\r\n");
    assert!(!headers.contains("content-encoding"), "{headers}");
    assert_eq!(body, b"plain css");

    for path in ["/../secret.txt", "/pkg/../../secret.txt", "/%2e%2e/secret.txt", "/missing.js"] {
        let (status, _, body) = get(server.port, path, "");
        assert!(status.contains("404"), "{path}: {status}");
        assert!(!String::from_utf8_lossy(&body).contains("outside the site"));
    }
}
