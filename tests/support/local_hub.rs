//! A local stand-in for a Hugging Face compatible hub, for tests (never the
//! internet). Shared by the root crate's, the CLI's and the server's tests
//! through `#[path]`, so it uses only the standard library.
//!
//! It serves `/{repo}/resolve/{revision}/{path}` like the hub does: an LFS
//! file answers `HEAD` with a redirect carrying `X-Linked-Etag` (SHA-256) and
//! `X-Linked-Size`, and `GET` with a redirect to a `/cdn/…` URL that serves
//! the bytes with `Range` support; a small file answers with its git blob id
//! as `ETag`. Faults can be injected: cut a download after N bytes, require
//! a token, serve different bytes than the metadata says.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

/// One request the hub saw.
#[derive(Debug, Clone)]
pub struct Seen {
    /// `GET` or `HEAD`.
    pub method: String,
    /// The request path.
    pub path: String,
    /// The `Range` header.
    pub range: Option<String>,
    /// The `Authorization` header.
    pub auth: Option<String>,
}

#[derive(Clone)]
struct Served {
    bytes: Vec<u8>,
    lfs: bool,
    /// What the metadata claims (defaults to the real SHA-256).
    claimed_sha256: Option<String>,
}

#[derive(Default)]
struct State {
    files: HashMap<String, Served>,
    token: Option<String>,
    /// Path (repo path) -> cut the next download after this many body bytes.
    cut_after: HashMap<String, u64>,
    /// Path (repo path) -> answer the next download with this status.
    fail_with: HashMap<String, u16>,
    seen: Vec<Seen>,
}

/// The running hub.
pub struct LocalHub {
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    state: Arc<Mutex<State>>,
}

fn sha256_hex(bytes: &[u8]) -> String {
    // A small SHA-256 so this helper needs no crate.
    const K: [u32; 64] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
        0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
        0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
        0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
        0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
        0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
        0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
    ];
    let mut h: [u32; 8] = [
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
    ];
    let mut msg = bytes.to_vec();
    let bits = (bytes.len() as u64).wrapping_mul(8);
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&bits.to_be_bytes());
    for block in msg.chunks(64) {
        let mut w = [0u32; 64];
        for i in 0..16 {
            w[i] = u32::from_be_bytes([block[4 * i], block[4 * i + 1], block[4 * i + 2], block[4 * i + 3]]);
        }
        for i in 16..64 {
            let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
            let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16].wrapping_add(s0).wrapping_add(w[i - 7]).wrapping_add(s1);
        }
        let mut v = h;
        for i in 0..64 {
            let s1 = v[4].rotate_right(6) ^ v[4].rotate_right(11) ^ v[4].rotate_right(25);
            let ch = (v[4] & v[5]) ^ (!v[4] & v[6]);
            let t1 = v[7]
                .wrapping_add(s1)
                .wrapping_add(ch)
                .wrapping_add(K[i])
                .wrapping_add(w[i]);
            let s0 = v[0].rotate_right(2) ^ v[0].rotate_right(13) ^ v[0].rotate_right(22);
            let maj = (v[0] & v[1]) ^ (v[0] & v[2]) ^ (v[1] & v[2]);
            let t2 = s0.wrapping_add(maj);
            v[7] = v[6];
            v[6] = v[5];
            v[5] = v[4];
            v[4] = v[3].wrapping_add(t1);
            v[3] = v[2];
            v[2] = v[1];
            v[1] = v[0];
            v[0] = t1.wrapping_add(t2);
        }
        for i in 0..8 {
            h[i] = h[i].wrapping_add(v[i]);
        }
    }
    h.iter().map(|x| format!("{x:08x}")).collect()
}

/// SHA-256 of `bytes`, hex (for building catalogs in tests).
pub fn sha256(bytes: &[u8]) -> String {
    sha256_hex(bytes)
}

impl LocalHub {
    /// Starts a hub on 127.0.0.1 with a free port; it serves until the
    /// test process ends.
    pub fn start() -> LocalHub {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State::default()));
        let s = state.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let s = s.clone();
                std::thread::spawn(move || {
                    let _ = serve(conn, &s);
                });
            }
        });
        LocalHub { endpoint, state }
    }

    /// Serves `bytes` as `repo@revision:path`, as an LFS file (metadata on a
    /// redirect, SHA-256 in `X-Linked-Etag`) or a small git file.
    pub fn add(&self, repo: &str, revision: &str, path: &str, bytes: &[u8], lfs: bool) {
        self.state.lock().unwrap().files.insert(
            format!("/{repo}/resolve/{revision}/{path}"),
            Served {
                bytes: bytes.to_vec(),
                lfs,
                claimed_sha256: None,
            },
        );
    }

    /// Makes the hub's metadata claim another SHA-256 for a file than its bytes have.
    pub fn claim_sha256(&self, repo: &str, revision: &str, path: &str, sha: &str) {
        let mut s = self.state.lock().unwrap();
        let f = s
            .files
            .get_mut(&format!("/{repo}/resolve/{revision}/{path}"))
            .expect("file added first");
        f.claimed_sha256 = Some(sha.to_string());
    }

    /// Every request to `resolve` must carry `Authorization: Bearer token`.
    pub fn require_token(&self, token: &str) {
        self.state.lock().unwrap().token = Some(token.to_string());
    }

    /// The next download of `path` (any repo) stops after `bytes` body bytes
    /// and the connection is closed.
    pub fn cut_next_download(&self, path: &str, bytes: u64) {
        self.state
            .lock()
            .unwrap()
            .cut_after
            .insert(path.to_string(), bytes);
    }

    /// The next download of `path` (any repo) is answered with `status`
    /// (e.g. 503) and an empty body.
    pub fn fail_next_download(&self, path: &str, status: u16) {
        self.state
            .lock()
            .unwrap()
            .fail_with
            .insert(path.to_string(), status);
    }

    /// The requests seen so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }
}

fn git_blob_hex(bytes: &[u8]) -> String {
    // SHA-1 of "blob <len>\0" + content.
    let mut msg = format!("blob {}\0", bytes.len()).into_bytes();
    msg.extend_from_slice(bytes);
    let mut h: [u32; 5] = [0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0];
    let bits = (msg.len() as u64).wrapping_mul(8);
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&bits.to_be_bytes());
    for block in msg.chunks(64) {
        let mut w = [0u32; 80];
        for i in 0..16 {
            w[i] = u32::from_be_bytes([block[4 * i], block[4 * i + 1], block[4 * i + 2], block[4 * i + 3]]);
        }
        for i in 16..80 {
            w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
        }
        let (mut a, mut b, mut c, mut d, mut e) = (h[0], h[1], h[2], h[3], h[4]);
        for (i, wi) in w.iter().enumerate() {
            let (f, k) = match i {
                0..=19 => ((b & c) | (!b & d), 0x5A827999),
                20..=39 => (b ^ c ^ d, 0x6ED9EBA1),
                40..=59 => ((b & c) | (b & d) | (c & d), 0x8F1BBCDC),
                _ => (b ^ c ^ d, 0xCA62C1D6),
            };
            let t = a
                .rotate_left(5)
                .wrapping_add(f)
                .wrapping_add(e)
                .wrapping_add(k)
                .wrapping_add(*wi);
            e = d;
            d = c;
            c = b.rotate_left(30);
            b = a;
            a = t;
        }
        h[0] = h[0].wrapping_add(a);
        h[1] = h[1].wrapping_add(b);
        h[2] = h[2].wrapping_add(c);
        h[3] = h[3].wrapping_add(d);
        h[4] = h[4].wrapping_add(e);
    }
    h.iter().map(|x| format!("{x:08x}")).collect()
}

fn respond(
    conn: &mut TcpStream,
    status: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> std::io::Result<()> {
    let mut head = format!("HTTP/1.1 {status}\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    conn.write_all(head.as_bytes())?;
    conn.write_all(body)?;
    conn.flush()
}

const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

fn serve(mut conn: TcpStream, state: &Mutex<State>) -> std::io::Result<()> {
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let path = parts.next().unwrap_or("").to_string();
    let mut range = None;
    let mut auth = None;
    let mut length = 0usize;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h == "\r\n" {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            let v = v.trim().to_string();
            match k.trim().to_ascii_lowercase().as_str() {
                "range" => range = Some(v),
                "authorization" => auth = Some(v),
                "content-length" => length = v.parse().unwrap_or(0),
                _ => {}
            }
        }
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body)?;
    let (file, token, cut, fail) = {
        let mut s = state.lock().unwrap();
        s.seen.push(Seen {
            method: method.clone(),
            path: path.clone(),
            range: range.clone(),
            auth: auth.clone(),
        });
        let key = path.strip_prefix("/cdn").unwrap_or(&path).to_string();
        // The commit the hub reports serves the same files as the branch.
        let file = s.files.get(&key).cloned().or_else(|| {
            let (repo, rest) = key.split_once(&format!("/resolve/{COMMIT}/"))?;
            s.files
                .iter()
                .find(|(k, _)| k.starts_with(&format!("{repo}/resolve/")) && k.ends_with(&format!("/{rest}")))
                .map(|(_, f)| f.clone())
        });
        let repo_path = key
            .splitn(5, '/')
            .nth(4)
            .map(|rest| rest.split_once('/').map(|x| x.1).unwrap_or("").to_string());
        let downloading =
            method == "GET" && (path.starts_with("/cdn/") || file.as_ref().is_some_and(|f| !f.lfs));
        let (cut, fail) = match (&repo_path, downloading) {
            (Some(p), true) => (s.cut_after.remove(p), s.fail_with.remove(p)),
            _ => (None, None),
        };
        (file, s.token.clone(), cut, fail)
    };
    if let Some(status) = fail {
        return respond(
            &mut conn,
            &format!("{status} Injected"),
            &[("Content-Length".into(), "0".into())],
            b"",
        );
    }
    let on_cdn = path.starts_with("/cdn/");
    if !on_cdn {
        if let Some(t) = &token {
            if auth.as_deref() != Some(&format!("Bearer {t}")) {
                return respond(
                    &mut conn,
                    "401 Unauthorized",
                    &[("Content-Length".into(), "0".into())],
                    b"",
                );
            }
        }
    }
    let Some(file) = file else {
        return respond(
            &mut conn,
            "404 Not Found",
            &[("Content-Length".into(), "0".into())],
            b"",
        );
    };
    let len = file.bytes.len() as u64;
    let sha = file
        .claimed_sha256
        .clone()
        .unwrap_or_else(|| sha256_hex(&file.bytes));
    let mut headers = vec![
        ("X-Repo-Commit".to_string(), COMMIT.to_string()),
        ("Accept-Ranges".to_string(), "bytes".to_string()),
    ];
    if file.lfs && !on_cdn {
        headers.push(("X-Linked-Etag".into(), format!("\"{sha}\"")));
        headers.push(("X-Linked-Size".into(), len.to_string()));
        headers.push(("ETag".into(), format!("\"{sha}\"")));
        headers.push(("Location".into(), format!("/cdn{path}")));
        headers.push(("Content-Length".into(), "0".into()));
        return respond(&mut conn, "302 Found", &headers, b"");
    }
    if !file.lfs {
        headers.push(("ETag".into(), format!("\"{}\"", git_blob_hex(&file.bytes))));
    }
    let start = range
        .as_deref()
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.strip_suffix('-'))
        .and_then(|n| n.parse::<u64>().ok());
    let (status, slice) = match start {
        Some(s) if s >= len => {
            headers.push(("Content-Range".into(), format!("bytes */{len}")));
            headers.push(("Content-Length".into(), "0".into()));
            return respond(&mut conn, "416 Range Not Satisfiable", &headers, b"");
        }
        Some(s) => {
            headers.push(("Content-Range".into(), format!("bytes {s}-{}/{len}", len - 1)));
            ("206 Partial Content", &file.bytes[s as usize..])
        }
        None => ("200 OK", &file.bytes[..]),
    };
    headers.push(("Content-Length".into(), slice.len().to_string()));
    if method == "HEAD" {
        return respond(&mut conn, status, &headers, b"");
    }
    match cut {
        Some(n) if (n as usize) < slice.len() => {
            respond(&mut conn, status, &headers, &slice[..n as usize])?;
            // Close without sending the rest.
            conn.shutdown(std::net::Shutdown::Both)
        }
        _ => respond(&mut conn, status, &headers, slice),
    }
}

#[cfg(test)]
mod self_check {
    #[test]
    fn hashes_match_known_values() {
        assert_eq!(
            super::sha256(b"hello\n"),
            "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"
        );
        assert_eq!(
            super::git_blob_hex(b"hello\n"),
            "ce013625030ba8dba906f756967f9e9ca394464a"
        );
    }
}
