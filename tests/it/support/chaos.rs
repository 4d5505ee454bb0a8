//! A fault-injecting HTTP proxy for the chaos tests: it stands on loopback between the
//! `fpga-sync` binary and one real service (Keystone, Placement, Glance or Nova) and
//! forwards each request, unless its faults say otherwise. It is HTTP-aware only as far as
//! it must be: it reads each request's head (method, path, `X-Auth-Token`), forwards it
//! with `Connection: close` (so one connection carries one request and the rest is plain
//! TCP), and then copies bytes both ways.
//!
//! Faults, drawn per request from a seeded generator:
//!
//! - latency before the request goes on, plus jitter, and a bandwidth limit per direction;
//! - a connection reset (RST) after a random number of bytes of the request body or of the
//!   response — mid-upload, mid-download, or after the service acted but before its answer;
//! - a half-open stall: the bytes stop for a while, the connection stays open, then it is
//!   reset (as a middlebox dropping an idle flow) or goes on;
//! - bursts of 502/503 answered in the service's place;
//! - token expiry: a request carrying a token first seen more than `token_lifetime` ago is
//!   answered 401, as Keystone's middleware answers an expired token;
//! - targeted answers: the first N requests matching a method and path get a status.
//!
//! Each request's draw comes from `seed`, the service, the method, the path with ids
//! masked, and how many such requests came before — so a run is reproducible as far as
//! its requests are the same; bursts depend on arrival order. The proxy runs on its own
//! thread and runtime, so blocking tests can use it, and logs every fault it injects.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Which faults, how often. All chances are per request.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    /// Added before each request goes on.
    pub latency: Duration,
    /// Up to this much more, uniformly, before each request and each chunk.
    pub jitter: Duration,
    /// Bytes per second in each direction (`None`: unlimited).
    pub bandwidth: Option<u64>,
    /// Chance of a reset somewhere in the request body or the response.
    pub reset: f64,
    /// Chance of a stall somewhere in the request body or the response.
    pub stall: f64,
    /// How long a stall lasts.
    pub stall_for: Duration,
    /// Chance that a stall ends in a reset rather than going on.
    pub stall_resets: f64,
    /// Chance that a request starts a burst of 502/503 answers.
    pub errors: f64,
    /// Most requests in one burst.
    pub burst: u32,
    /// Tokens older than this are refused with 401 (Keystone's own requests excepted).
    pub token_lifetime: Option<Duration>,
    /// Requests answered with a status, whatever the draw: (method, path substring,
    /// status, how many times).
    pub targeted: Vec<(String, String, u16, u32)>,
    /// Requests forwarded whole whose answer is never passed on (the connection stays
    /// open): (method, path with ids masked as `*`), e.g. `("POST", "/v2.1/flavors")`.
    /// The service acted; the client waits — for the crash-loop tests to kill it there.
    pub hold: Vec<(String, String)>,
}

impl Faults {
    /// Nothing: a plain proxy.
    pub fn none() -> Faults {
        Faults::default()
    }

    /// A mixed profile for seeded chaos runs: every fault kind at a modest rate.
    pub fn mixed(rng: &mut StdRng) -> Faults {
        Faults {
            latency: Duration::from_millis(rng.random_range(0..20)),
            jitter: Duration::from_millis(rng.random_range(0..30)),
            bandwidth: rng
                .random_bool(0.5)
                .then(|| rng.random_range(2..12) * 1024 * 1024),
            reset: rng.random_range(0.0..0.06),
            stall: rng.random_range(0.0..0.04),
            stall_for: Duration::from_millis(rng.random_range(200..1500)),
            stall_resets: 0.5,
            errors: rng.random_range(0.0..0.08),
            burst: rng.random_range(1..4),
            token_lifetime: None,
            targeted: Vec::new(),
            hold: Vec::new(),
        }
    }
}

/// A request's body, as its head announces it.
#[derive(Clone, Copy, Debug)]
enum Body {
    None,
    Length(u64),
    Chunked,
}

/// What happens to one request.
#[derive(Clone, Debug, PartialEq)]
enum Fate {
    Forward(Option<Cut>),
    Answer(u16),
    Hold,
}

/// Where a forwarded request's connection is interrupted.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Cut {
    /// In the response (else in the request body).
    response: bool,
    /// After this many bytes.
    after: u64,
    /// Stall first, for this long.
    stall: Option<Duration>,
    /// Then reset (else go on).
    reset: bool,
}

struct State {
    service: &'static str,
    upstream: SocketAddr,
    seed: u64,
    faults: Faults,
    seen: HashMap<String, u32>,
    tokens: HashMap<String, Instant>,
    burst_left: u32,
    targeted_used: Vec<u32>,
    log: Vec<String>,
    requests: Vec<(u64, String)>,
}

/// Orders requests across all proxies.
static SEQUENCE: AtomicU64 = AtomicU64::new(0);

/// A running proxy to one service.
pub struct Proxy {
    /// `http://127.0.0.1:PORT`: give it to the binary instead of the service's.
    pub url: String,
    state: Arc<Mutex<State>>,
}

impl Proxy {
    /// A proxy to `upstream` (`http://HOST:PORT[/path]`; the path is kept by the caller),
    /// named `service` in its log, with no faults yet.
    pub fn start(service: &'static str, upstream: &str) -> Proxy {
        let authority = upstream
            .trim_start_matches("http://")
            .split('/')
            .next()
            .unwrap()
            .to_owned();
        let upstream: SocketAddr = authority.parse().expect("a loopback ip:port");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State {
            service,
            upstream,
            seed: 0,
            faults: Faults::none(),
            seen: HashMap::new(),
            tokens: HashMap::new(),
            burst_left: 0,
            targeted_used: Vec::new(),
            log: Vec::new(),
            requests: Vec::new(),
        }));
        let shared = state.clone();
        std::thread::Builder::new()
            .name(format!("chaos-{service}"))
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .unwrap();
                runtime.block_on(async move {
                    let listener = TcpListener::from_std(listener).unwrap();
                    while let Ok((client, _)) = listener.accept().await {
                        let state = shared.clone();
                        tokio::spawn(async move {
                            let _ = serve(client, state).await;
                        });
                    }
                });
            })
            .unwrap();
        Proxy { url, state }
    }

    /// Sets the faults of the next requests, drawn from `seed`; clears the log and the
    /// request counts (not the tokens seen: a token stays as old as it is).
    pub fn set(&self, seed: u64, faults: Faults) {
        let mut s = self.state.lock().unwrap();
        s.seed = seed;
        s.targeted_used = vec![0; faults.targeted.len()];
        s.faults = faults;
        s.seen.clear();
        s.burst_left = 0;
        s.log.clear();
        s.requests.clear();
    }

    /// The faults injected since the last [`Proxy::set`], one line each.
    pub fn log(&self) -> Vec<String> {
        self.state.lock().unwrap().log.clone()
    }

    /// Every request since the last [`Proxy::set`]: a sequence number shared by all
    /// proxies, and `SERVICE METHOD /path`.
    pub fn requests(&self) -> Vec<(u64, String)> {
        self.state.lock().unwrap().requests.clone()
    }
}

/// `/v2/images/<uuid>/file` → `/v2/images/*/file`: ids masked, the query dropped.
pub fn shape(path: &str) -> String {
    path.split('?')
        .next()
        .unwrap_or_default()
        .split('/')
        .map(|p| {
            if p.len() >= 16 && p.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
                "*"
            } else {
                p
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

impl State {
    fn decide(&mut self, method: &str, path: &str, token: Option<&str>, body: Body) -> Fate {
        let key = format!("{method} {}", shape(path));
        let n = {
            let count = self.seen.entry(key.clone()).or_default();
            *count += 1;
            *count
        };
        let mut hasher = DefaultHasher::new();
        (self.seed, self.service, &key, n).hash(&mut hasher);
        let mut rng = StdRng::seed_from_u64(hasher.finish());
        let f = &self.faults;
        if f.hold.iter().any(|(m, p)| m == method && *p == shape(path)) {
            return Fate::Hold;
        }
        for (i, (m, p, status, times)) in f.targeted.iter().enumerate() {
            if m == method && path.contains(p.as_str()) && self.targeted_used[i] < *times {
                self.targeted_used[i] += 1;
                return Fate::Answer(*status);
            }
        }
        let keystone = method == "POST" && path.ends_with("/auth/tokens");
        if let (Some(life), Some(token), false) = (f.token_lifetime, token, keystone) {
            let first = *self
                .tokens
                .entry(token.to_owned())
                .or_insert_with(Instant::now);
            if first.elapsed() > life {
                return Fate::Answer(401);
            }
        }
        if self.burst_left > 0 {
            self.burst_left -= 1;
            return Fate::Answer(if rng.random_bool(0.5) { 502 } else { 503 });
        }
        if rng.random_bool(f.errors.clamp(0.0, 1.0)) {
            self.burst_left = rng.random_range(0..f.burst.max(1));
            return Fate::Answer(if rng.random_bool(0.5) { 502 } else { 503 });
        }
        let cut = |rng: &mut StdRng, stall: Option<Duration>, reset: bool| {
            // In the request body when there is one (anywhere in it; a streamed upload
            // within its first MiB), else early in the response (JSON answers are short).
            let in_body = match body {
                Body::None => None,
                Body::Length(n) => Some(n),
                Body::Chunked => Some(1 << 20),
            };
            let response = in_body.is_none() || rng.random_bool(0.5);
            let after = match in_body {
                Some(n) if !response => rng.random_range(0..n.max(1)),
                _ => rng.random_range(0..400),
            };
            Cut {
                response,
                after,
                stall,
                reset,
            }
        };
        if rng.random_bool(f.reset.clamp(0.0, 1.0)) {
            return Fate::Forward(Some(cut(&mut rng, None, true)));
        }
        if rng.random_bool(f.stall.clamp(0.0, 1.0)) {
            let reset = rng.random_bool(f.stall_resets.clamp(0.0, 1.0));
            return Fate::Forward(Some(cut(&mut rng, Some(f.stall_for), reset)));
        }
        Fate::Forward(None)
    }
}

/// Reads up to the end of the request head; `None` at EOF.
async fn read_head(client: &mut TcpStream) -> std::io::Result<Option<(Vec<u8>, usize)>> {
    let mut buffer = Vec::with_capacity(8192);
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            return Ok(Some((buffer, end + 4)));
        }
        if buffer.len() > 256 * 1024 {
            return Err(std::io::Error::other("request head too large"));
        }
        let n = client.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
}

async fn serve(mut client: TcpStream, state: Arc<Mutex<State>>) -> std::io::Result<()> {
    let Some((buffer, head_end)) = read_head(&mut client).await? else {
        return Ok(());
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default().to_owned();
    let mut parts = request_line.split(' ');
    let (method, path) = (
        parts.next().unwrap_or_default().to_owned(),
        parts.next().unwrap_or_default().to_owned(),
    );
    let headers: Vec<&str> = lines.filter(|l| !l.is_empty()).collect();
    let token = headers.iter().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case("x-auth-token")
            .then(|| v.trim().to_owned())
    });
    let header = |name: &str| {
        headers.iter().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_owned())
        })
    };
    let body = match (header("content-length"), header("transfer-encoding")) {
        (_, Some(t)) if t.eq_ignore_ascii_case("chunked") => Body::Chunked,
        (Some(n), _) => n.parse().map_or(Body::None, Body::Length),
        _ => Body::None,
    };
    let (fate, faults, upstream, service) = {
        let mut s = state.lock().unwrap();
        let fate = s.decide(&method, &path, token.as_deref(), body);
        let line = format!(
            "{} {method} {}",
            s.service,
            path.split('?').next().unwrap_or_default()
        );
        s.requests
            .push((SEQUENCE.fetch_add(1, Ordering::SeqCst), line));
        if fate != Fate::Forward(None) {
            let line = format!("{} {method} {}: {fate:?}", s.service, shape(&path));
            s.log.push(line);
        }
        (fate, s.faults.clone(), s.upstream, s.service)
    };
    let wait = faults.latency + faults.jitter.mul_f64(rand::random::<f64>());
    if !wait.is_zero() {
        tokio::time::sleep(wait).await;
    }
    let (cut, hold) = match fate {
        Fate::Answer(status) => return answer(client, status, service).await,
        Fate::Forward(cut) => (cut, false),
        Fate::Hold => (None, true),
    };
    let mut server = TcpStream::connect(upstream).await?;
    let mut rewritten = format!("{request_line}\r\n");
    for h in &headers {
        let name = h.split(':').next().unwrap_or_default().trim();
        if !name.eq_ignore_ascii_case("connection") && !name.eq_ignore_ascii_case("keep-alive") {
            rewritten.push_str(h);
            rewritten.push_str("\r\n");
        }
    }
    rewritten.push_str("Connection: close\r\n\r\n");
    server.write_all(rewritten.as_bytes()).await?;
    let body_start = &buffer[head_end..];
    let up_cut = cut.filter(|c| !c.response);
    let down_cut = cut.filter(|c| c.response);
    let cut_happened = {
        let (mut cr, mut cw) = client.split();
        let (mut sr, mut sw) = server.split();
        let up = async {
            let mut sent = 0u64;
            if !body_start.is_empty() {
                pace(&faults, body_start.len()).await;
                sw.write_all(body_start).await?;
                sent = body_start.len() as u64;
            }
            let flow = pump(&mut cr, &mut sw, &faults, up_cut, sent).await?;
            if matches!(flow, Flow::Done) {
                // The client closed its side (it exited or was killed, perhaps in the
                // middle of a body): the service sees that close, as it would without
                // the proxy, instead of waiting for the rest of the body.
                let _ = sw.shutdown().await;
            }
            Ok::<Flow, std::io::Error>(flow)
        };
        let down = async {
            if hold {
                // Take the answer, pass none of it on, and keep the client waiting.
                let mut sink = vec![0u8; 16 * 1024];
                while sr.read(&mut sink).await? > 0 {}
                std::future::pending::<()>().await;
            }
            pump(&mut sr, &mut cw, &faults, down_cut, 0).await
        };
        tokio::pin!(up, down);
        let mut up_done = false;
        loop {
            tokio::select! {
                r = &mut up, if !up_done => match r {
                    Ok(Flow::Done) => up_done = true,
                    Ok(Flow::Cut) | Err(_) => break true,
                },
                r = &mut down => break !matches!(r, Ok(Flow::Done)),
            }
        }
    };
    if cut_happened {
        // A zero linger makes the close a reset (RST) at once; it does not block.
        #[allow(deprecated)]
        {
            client.set_linger(Some(Duration::ZERO))?;
            server.set_linger(Some(Duration::ZERO))?;
        }
    } else {
        let _ = client.shutdown().await;
    }
    Ok(())
}

enum Flow {
    Done,
    Cut,
}

/// Sleeps as long as `bytes` take at the bandwidth limit, plus a little jitter.
async fn pace(faults: &Faults, bytes: usize) {
    let mut wait = Duration::ZERO;
    if let Some(rate) = faults.bandwidth {
        wait += Duration::from_secs_f64(bytes as f64 / rate as f64);
    }
    if !faults.jitter.is_zero() {
        wait += faults.jitter.mul_f64(rand::random::<f64>() / 8.0);
    }
    if !wait.is_zero() {
        tokio::time::sleep(wait).await;
    }
}

/// Copies until EOF, or until `cut` (counted from `sent`) stops it.
async fn pump(
    from: &mut (impl AsyncRead + Unpin),
    to: &mut (impl AsyncWrite + Unpin),
    faults: &Faults,
    cut: Option<Cut>,
    mut sent: u64,
) -> std::io::Result<Flow> {
    let mut chunk = vec![0u8; 16 * 1024];
    let mut cut = cut;
    loop {
        let n = from.read(&mut chunk).await?;
        if n == 0 {
            let _ = to.flush().await;
            return Ok(Flow::Done);
        }
        let mut bytes = &chunk[..n];
        if let Some(c) = cut
            && sent + n as u64 > c.after
        {
            let before = (c.after.saturating_sub(sent)) as usize;
            to.write_all(&bytes[..before]).await?;
            to.flush().await?;
            sent += before as u64;
            bytes = &bytes[before..];
            if let Some(stall) = c.stall {
                tokio::time::sleep(stall).await;
            }
            if c.reset {
                return Ok(Flow::Cut);
            }
            cut = None;
        }
        pace(faults, bytes.len()).await;
        to.write_all(bytes).await?;
        sent += bytes.len() as u64;
    }
}

/// Answers in the service's place and closes.
async fn answer(mut client: TcpStream, status: u16, service: &str) -> std::io::Result<()> {
    let (reason, body) = match status {
        401 => (
            "Unauthorized",
            r#"{"error": {"code": 401, "title": "Unauthorized", "message": "The request you have made requires authentication."}}"#.to_owned(),
        ),
        502 => ("Bad Gateway", format!(r#"{{"message": "chaos proxy: {service} is behind a failing gateway"}}"#)),
        503 => ("Service Unavailable", format!(r#"{{"message": "chaos proxy: {service} is unavailable"}}"#)),
        _ => ("Error", format!(r#"{{"message": "chaos proxy: {status}"}}"#)),
    };
    let response = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    client.write_all(response.as_bytes()).await?;
    let _ = client.shutdown().await;
    // Take what the client still sends (an upload's body) for a moment, so it reads the
    // answer rather than a reset.
    let mut sink = vec![0u8; 64 * 1024];
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while matches!(client.read(&mut sink).await, Ok(n) if n > 0) {}
    })
    .await;
    Ok(())
}

/// Proxies in front of one mode of the local cloud (`local-keystone`: Keystone too) and a
/// clouds.yaml whose cloud `chaos` reaches the services only through them: the endpoints
/// are fixed with `*_endpoint_override` (in Keystone mode next to password auth, whose
/// `auth_url` is the Keystone proxy), so no catalog needs rewriting.
pub struct ChaosCloud {
    /// Keystone's proxy (Keystone mode only).
    pub keystone: Option<Proxy>,
    /// Placement's.
    pub placement: Proxy,
    /// Glance's.
    pub glance: Proxy,
    /// Nova's.
    pub nova: Proxy,
    dir: tempfile::TempDir,
}

impl ChaosCloud {
    /// Proxies for `mode` (`local-keystone` or `local-noauth`).
    pub fn new(mode: &str) -> ChaosCloud {
        let cloud = crate::support::cloud::local_cloud();
        let keystone_mode = mode == crate::support::cloud::KEYSTONE;
        let var = |k: &str| {
            let key = if keystone_mode {
                format!("FPGA_SYNC_CLOUD_{k}_URL")
            } else {
                format!("FPGA_SYNC_CLOUD_NOAUTH_{k}_URL")
            };
            cloud.var(&key).to_owned()
        };
        let path_of = |url: &str| {
            let rest = url.trim_start_matches("http://");
            rest.find('/')
                .map(|i| rest[i..].to_owned())
                .unwrap_or_default()
        };
        let (placement_url, glance_url, nova_url) = (var("PLACEMENT"), var("GLANCE"), var("NOVA"));
        let placement = Proxy::start("Placement", &placement_url);
        let glance = Proxy::start("Glance", &glance_url);
        let nova = Proxy::start("Nova", &nova_url);
        let dir = tempfile::tempdir().unwrap();
        let overrides = format!(
            "    placement_endpoint_override: {}{}\n    image_endpoint_override: {}{}\n    compute_endpoint_override: {}{}\n",
            placement.url,
            path_of(&placement_url),
            glance.url,
            path_of(&glance_url),
            nova.url,
            path_of(&nova_url)
        );
        let keystone = if keystone_mode {
            let url = cloud.var("FPGA_SYNC_CLOUD_KEYSTONE_URL").to_owned();
            let proxy = Proxy::start("Keystone", &url);
            std::fs::write(
                dir.path().join("clouds.yaml"),
                format!(
                    "clouds:\n  chaos:\n    auth_type: password\n    auth:\n      auth_url: {}{}\n      username: admin\n      project_name: admin\n      user_domain_name: Default\n      project_domain_name: Default\n    region_name: RegionOne\n    identity_api_version: 3\n{overrides}",
                    proxy.url,
                    path_of(&url)
                ),
            )
            .unwrap();
            let secure = dir.path().join("secure.yaml");
            std::fs::write(
                &secure,
                format!(
                    "clouds:\n  chaos:\n    auth:\n      password: '{}'\n",
                    cloud.admin_password()
                ),
            )
            .unwrap();
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&secure, std::fs::Permissions::from_mode(0o600)).unwrap();
            Some(proxy)
        } else {
            std::fs::write(
                dir.path().join("clouds.yaml"),
                format!(
                    "clouds:\n  chaos:\n    auth_type: admin_token\n    auth:\n      token: admin\n{overrides}"
                ),
            )
            .unwrap();
            None
        };
        ChaosCloud {
            keystone,
            placement,
            glance,
            nova,
            dir,
        }
    }

    /// The environment of a binary that must go through the proxies.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        let path = |f: &str| -> String { self.dir.path().join(f).display().to_string() };
        vec![
            ("OS_CLIENT_CONFIG_FILE", path("clouds.yaml")),
            ("OS_CLIENT_SECURE_FILE", path("secure.yaml")),
            ("OS_CLOUD", "chaos".into()),
        ]
    }

    /// Every proxy.
    pub fn proxies(&self) -> Vec<&Proxy> {
        let mut all: Vec<&Proxy> = self.keystone.iter().collect();
        all.extend([&self.placement, &self.glance, &self.nova]);
        all
    }

    /// Sets each proxy's faults (`faults` is asked per service name), from one seed.
    pub fn set(&self, seed: u64, faults: impl Fn(&str) -> Faults) {
        for p in self.proxies() {
            let service = p.state.lock().unwrap().service;
            p.set(seed, faults(service));
        }
    }

    /// The faults injected by every proxy since the last [`ChaosCloud::set`].
    pub fn log(&self) -> Vec<String> {
        self.proxies().iter().flat_map(|p| p.log()).collect()
    }

    /// Every request through any proxy since the last set, in order.
    pub fn requests(&self) -> Vec<String> {
        let mut all: Vec<(u64, String)> =
            self.proxies().iter().flat_map(|p| p.requests()).collect();
        all.sort();
        all.into_iter().map(|(_, r)| r).collect()
    }

    /// The folder of its clouds.yaml.
    pub fn dir(&self) -> PathBuf {
        self.dir.path().to_owned()
    }
}

/// Whether a failed run's output names the service and the request that failed (or the
/// image whose content did not match), as every cloud error must.
pub fn names_service_and_request(out: &str) -> bool {
    let services = ["Keystone", "Placement", "Glance", "Nova"];
    let methods = ["GET /", "PUT /", "POST /", "PATCH /", "DELETE /", "HEAD /"];
    out.lines().any(|l| {
        (services.iter().any(|s| l.contains(s)) && methods.iter().any(|m| l.contains(m)))
            || (l.contains("image ") && l.contains("expected"))
    })
}
