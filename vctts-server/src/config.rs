//! Typed configuration of the three roles, parsed from an injected source.
//!
//! Sources are layered: built-in defaults < the YAML file < environment
//! (`VCTTS_<SECTION>__<KEY>=value`, e.g. `VCTTS_LIMITER__IP_RPM=10`) < command
//! line flags (applied by the binary on the parsed struct). Inside the file,
//! `${VAR}` and `${VAR:default}` are replaced by the variable's value. The
//! file is read with `serde_yaml_ng` (figment's own YAML provider would bring
//! back the deprecated `serde_yaml`), substituted, and handed to `figment` as
//! one provider; the overrides are a second; figment merges them and decodes
//! the result, and its error's key path is written the way users write keys.
//!
//! Invariants:
//! - parsing never reads the process environment: callers pass an [`Env`]
//!   (tests build one from pairs, the binary snapshots the real one);
//! - unknown keys are errors naming the key path (`limiter.ip_rmp: unknown field`);
//! - every struct returned by [`GatewayConfig::parse`] / [`WorkerConfig::parse`]
//!   has passed [`validate`](GatewayConfig::validate): errors name the field
//!   ("limiter.ip_rpm must be > 0, got 0");
//! - durations are seconds (a number, fractions allowed) or strings with a unit
//!   (`500ms`, `10s`, `2m`, `1h`); sizes are bytes or strings with a unit
//!   (`512KB` = 512,000, `64KiB` = 65,536, `10MB`, `1GiB`; one parser for
//!   all, [`vctts_core::units`]).

use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use vctts_core::{EngineKind, Error, Result};

/// A snapshot of environment variables, injected into config parsing.
#[derive(Debug, Clone, Default)]
pub struct Env {
    vars: BTreeMap<String, String>,
}

impl Env {
    /// An empty environment.
    pub fn empty() -> Self {
        Self::default()
    }

    /// An environment from explicit pairs (tests).
    pub fn from_pairs<K: Into<String>, V: Into<String>>(pairs: impl IntoIterator<Item = (K, V)>) -> Self {
        Self {
            vars: pairs.into_iter().map(|(k, v)| (k.into(), v.into())).collect(),
        }
    }

    /// A snapshot of the process environment (the binary only).
    pub fn from_process() -> Self {
        Self {
            vars: std::env::vars().collect(),
        }
    }

    /// The value of one variable.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.vars.get(key).map(String::as_str)
    }

    /// `VCTTS_A__B__C=v` overrides as (`["a","b","c"]`, `v`).
    fn overrides(&self) -> Vec<(Vec<String>, String)> {
        self.vars
            .iter()
            .filter_map(|(k, v)| {
                let rest = k.strip_prefix("VCTTS_")?;
                if !rest.contains("__") {
                    return None;
                }
                let path = rest
                    .split("__")
                    .map(|s| s.to_ascii_lowercase())
                    .collect::<Vec<_>>();
                if path.iter().any(String::is_empty) {
                    return None;
                }
                Some((path, v.clone()))
            })
            .collect()
    }
}

/// A duration read as seconds or with a unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Seconds(#[serde(serialize_with = "ser_duration")] pub Duration);

fn ser_duration<S: serde::Serializer>(d: &Duration, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

impl Seconds {
    /// From whole seconds.
    pub const fn secs(s: u64) -> Self {
        Self(Duration::from_secs(s))
    }
}

/// Parses `10`, `0.5`, `500ms`, `10s`, `2m`, `1h` ([`vctts_core::units`]).
pub fn parse_duration(s: &str) -> std::result::Result<Duration, String> {
    vctts_core::units::parse_duration(s)
}

impl<'de> Deserialize<'de> for Seconds {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        parse_scalar(d, "a duration", |s| parse_duration(s).map(Seconds))
    }
}

/// A size in bytes read as a number or with a unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct ByteSize(pub u64);

/// Parses one `trusted_proxies` entry: an address or a network in CIDR form.
pub fn parse_proxy(entry: &str) -> std::result::Result<ipnet::IpNet, String> {
    let t = entry.trim();
    t.parse::<ipnet::IpNet>()
        .or_else(|_| t.parse::<IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| format!("{entry:?} is not an address or a network (e.g. 10.0.0.0/8, 127.0.0.1, ::1)"))
}

/// Parses `1024`, `512KB` (512,000), `10MiB`, `1GB` ([`vctts_core::units`]).
pub fn parse_size(s: &str) -> std::result::Result<u64, String> {
    vctts_core::units::parse_size(s)
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        parse_scalar(d, "a size", |s| parse_size(s).map(ByteSize))
    }
}

/// Reads a scalar (string, number or boolean) and parses its text with
/// `parse`, inside the deserializer, so an error carries the key path.
fn parse_scalar<'de, D, T>(
    d: D,
    expecting: &'static str,
    parse: fn(&str) -> std::result::Result<T, String>,
) -> std::result::Result<T, D::Error>
where
    D: Deserializer<'de>,
{
    d.deserialize_any(ScalarVisitor { expecting, parse })
}

/// Like [`parse_scalar`] for optional fields: null, a missing value or an
/// empty string is `None`.
fn parse_opt_scalar<'de, D, T>(
    d: D,
    expecting: &'static str,
    parse: fn(&str) -> std::result::Result<T, String>,
) -> std::result::Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
{
    d.deserialize_any(OptScalarVisitor { expecting, parse })
}

struct ScalarVisitor<T> {
    expecting: &'static str,
    parse: fn(&str) -> std::result::Result<T, String>,
}

impl<'de, T> serde::de::Visitor<'de> for ScalarVisitor<T> {
    type Value = T;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.expecting)
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> std::result::Result<T, E> {
        (self.parse)(v).map_err(E::custom)
    }
    fn visit_bool<E: serde::de::Error>(self, v: bool) -> std::result::Result<T, E> {
        self.visit_str(&v.to_string())
    }
    fn visit_i64<E: serde::de::Error>(self, v: i64) -> std::result::Result<T, E> {
        self.visit_str(&v.to_string())
    }
    fn visit_u64<E: serde::de::Error>(self, v: u64) -> std::result::Result<T, E> {
        self.visit_str(&v.to_string())
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> std::result::Result<T, E> {
        self.visit_str(&v.to_string())
    }
}

struct OptScalarVisitor<T> {
    expecting: &'static str,
    parse: fn(&str) -> std::result::Result<T, String>,
}

impl<'de, T> serde::de::Visitor<'de> for OptScalarVisitor<T> {
    type Value = Option<T>;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} or nothing", self.expecting)
    }
    fn visit_unit<E: serde::de::Error>(self) -> std::result::Result<Option<T>, E> {
        Ok(None)
    }
    fn visit_none<E: serde::de::Error>(self) -> std::result::Result<Option<T>, E> {
        Ok(None)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> std::result::Result<Option<T>, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> std::result::Result<Option<T>, E> {
        if v.is_empty() {
            return Ok(None);
        }
        (self.parse)(v).map(Some).map_err(E::custom)
    }
    fn visit_bool<E: serde::de::Error>(self, v: bool) -> std::result::Result<Option<T>, E> {
        self.visit_str(&v.to_string())
    }
    fn visit_i64<E: serde::de::Error>(self, v: i64) -> std::result::Result<Option<T>, E> {
        self.visit_str(&v.to_string())
    }
    fn visit_u64<E: serde::de::Error>(self, v: u64) -> std::result::Result<Option<T>, E> {
        self.visit_str(&v.to_string())
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> std::result::Result<Option<T>, E> {
        self.visit_str(&v.to_string())
    }
}

fn parse_from_str<T>(s: &str) -> std::result::Result<T, String>
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    s.trim().parse::<T>().map_err(|e| format!("{s:?}: {e}"))
}

/// Deserializes a number or bool that may arrive as a string (after `${VAR}`
/// substitution or from an environment override).
fn lenient<'de, D, T>(d: D) -> std::result::Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    parse_scalar(d, "a value", parse_from_str::<T>)
}

fn lenient_opt_string<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<String>, D::Error> {
    parse_opt_scalar(d, "a string", |s| Ok(s.to_string()))
}

fn lenient_string<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<String, D::Error> {
    parse_scalar(d, "a string", |s| Ok(s.to_string()))
}

fn engine_kind<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<EngineKind, D::Error> {
    parse_scalar(d, "an engine name", |s| {
        s.parse::<EngineKind>().map_err(|e| e.to_string())
    })
}

fn opt_engine_kind<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<EngineKind>, D::Error> {
    parse_opt_scalar(d, "an engine name", |s| {
        s.parse::<EngineKind>().map_err(|e| e.to_string())
    })
}

/// Replaces `${VAR}` and `${VAR:default}` in every string of a YAML tree.
fn substitute(v: &mut serde_yaml_ng::Value, env: &Env) -> Result<()> {
    match v {
        serde_yaml_ng::Value::String(s) => {
            *s = substitute_str(s, env)?;
        }
        serde_yaml_ng::Value::Sequence(items) => {
            for i in items {
                substitute(i, env)?;
            }
        }
        serde_yaml_ng::Value::Mapping(m) => {
            for (_, val) in m.iter_mut() {
                substitute(val, env)?;
            }
        }
        serde_yaml_ng::Value::Tagged(t) => substitute(&mut t.value, env)?,
        _ => {}
    }
    Ok(())
}

/// Substitutes `${VAR}` / `${VAR:default}` in one string; `$$` is a literal `$`.
pub fn substitute_str(s: &str, env: &Env) -> Result<String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(a) = after.strip_prefix('$') {
            out.push('$');
            rest = a;
        } else if let Some(body_start) = after.strip_prefix('{') {
            let end = body_start
                .find('}')
                .ok_or_else(|| Error::Config(format!("unterminated ${{...}} in {s:?}")))?;
            let body = &body_start[..end];
            let (name, default) = match body.split_once(':') {
                Some((n, d)) => (n, Some(d)),
                None => (body, None),
            };
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(Error::Config(format!("bad variable name {name:?} in {s:?}")));
            }
            match (env.get(name), default) {
                (Some(v), _) => out.push_str(v),
                (None, Some(d)) => out.push_str(d),
                (None, None) => {
                    return Err(Error::Config(format!(
                        "environment variable {name} is not set (use ${{{name}:default}} for a default)"
                    )));
                }
            }
            rest = &body_start[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// A YAML tree as a figment value. Mapping entries whose value is null are
/// left out, so a section written as `server:` (null) takes its defaults, as
/// an empty mapping does; tags become one-entry mappings (an externally
/// tagged enum, as serde reads them); keys must be scalars.
fn yaml_to_figment(v: &serde_yaml_ng::Value, what: &str) -> Result<figment::value::Value> {
    use figment::value::{Empty, Tag, Value as Fig};
    use serde_yaml_ng::Value as Yaml;
    Ok(match v {
        Yaml::Null => Fig::Empty(Tag::Default, Empty::None),
        Yaml::Bool(b) => Fig::from(*b),
        Yaml::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
            (Some(u), _, _) => Fig::from(u),
            (None, Some(i), _) => Fig::from(i),
            (None, None, Some(f)) => Fig::from(f),
            _ => return Err(Error::Config(format!("{what}: unsupported number {n}"))),
        },
        Yaml::String(s) => Fig::from(s.clone()),
        Yaml::Sequence(items) => Fig::Array(
            Tag::Default,
            items
                .iter()
                .map(|i| yaml_to_figment(i, what))
                .collect::<Result<_>>()?,
        ),
        Yaml::Mapping(m) => {
            let mut dict = figment::value::Dict::new();
            for (k, val) in m {
                let key = match k {
                    Yaml::String(s) => s.clone(),
                    Yaml::Number(n) => n.to_string(),
                    Yaml::Bool(b) => b.to_string(),
                    _ => {
                        return Err(Error::Config(format!(
                            "{what}: mapping keys must be strings, got {k:?}"
                        )));
                    }
                };
                if !val.is_null() {
                    dict.insert(key, yaml_to_figment(val, what)?);
                }
            }
            Fig::Dict(Tag::Default, dict)
        }
        Yaml::Tagged(t) => {
            let mut dict = figment::value::Dict::new();
            let tag = t.tag.to_string();
            let tag = tag.strip_prefix('!').unwrap_or(&tag).to_string();
            dict.insert(tag, yaml_to_figment(&t.value, what)?);
            Fig::Dict(Tag::Default, dict)
        }
    })
}

/// One layer of the configuration: a tree of values under figment's
/// default profile, named for figment's metadata.
struct Layer {
    name: &'static str,
    dict: figment::value::Dict,
}

impl figment::Provider for Layer {
    fn metadata(&self) -> figment::Metadata {
        figment::Metadata::named(self.name)
    }

    fn data(
        &self,
    ) -> std::result::Result<figment::value::Map<figment::Profile, figment::value::Dict>, figment::Error>
    {
        Ok(figment::Profile::Default.collect(self.dict.clone()))
    }
}

/// The `VCTTS_<SECTION>__<KEY>=value` overrides as one layer. Values are typed
/// like YAML scalars (numbers and booleans stay numbers and booleans, anything
/// else is a string). An override whose path crosses a value of the file (or
/// of an earlier override) that is not a section is refused, naming both.
fn env_layer(env: &Env, file: &figment::value::Dict) -> Result<figment::value::Dict> {
    use figment::value::{Dict, Tag, Value as Fig};
    let mut layer = Dict::new();
    for (path, value) in env.overrides() {
        let not_a_section = |i: usize| {
            Error::Config(format!(
                "environment override VCTTS_{}: {} is not a section",
                path.join("__").to_ascii_uppercase(),
                path[..i].join(".")
            ))
        };
        // What the file holds along the path must be sections too.
        let mut in_file = Some(file);
        let mut cur = &mut layer;
        for (i, seg) in path.iter().enumerate() {
            if i + 1 == path.len() {
                let typed = match serde_yaml_ng::from_str::<serde_yaml_ng::Value>(&value) {
                    Ok(v @ (serde_yaml_ng::Value::Number(_) | serde_yaml_ng::Value::Bool(_))) => {
                        yaml_to_figment(&v, "environment override")?
                    }
                    _ => Fig::from(value.clone()),
                };
                cur.insert(seg.clone(), typed);
                break;
            }
            in_file = match in_file.and_then(|d| d.get(seg)) {
                None => None,
                Some(Fig::Dict(_, d)) => Some(d),
                Some(_) => return Err(not_a_section(i + 1)),
            };
            let next = cur
                .entry(seg.clone())
                .or_insert_with(|| Fig::Dict(Tag::Default, Dict::new()));
            cur = match next {
                Fig::Dict(_, d) => d,
                _ => return Err(not_a_section(i + 1)),
            };
        }
    }
    Ok(layer)
}

/// The key path of a figment error as users write it: `a.b`, with sequence
/// indices in brackets (`announcements[0].type`), found by walking `root`.
fn key_path(path: &[String], root: Option<&figment::value::Value>) -> String {
    use figment::value::Value as Fig;
    let mut out = String::new();
    let mut cur = root;
    for seg in path {
        match (cur, seg.parse::<usize>()) {
            (Some(Fig::Array(_, items)), Ok(i)) => {
                out.push_str(&format!("[{i}]"));
                cur = items.get(i);
            }
            _ => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(seg);
                cur = match cur {
                    Some(Fig::Dict(_, d)) => d.get(seg),
                    _ => None,
                };
            }
        }
    }
    out
}

/// Parses YAML text into `T`: `${VAR}` substitution in the file, then the
/// layers defaults (the types' serde defaults) < file < environment overrides
/// merged and decoded by figment, whose errors carry the key path.
fn parse_layered<T: serde::de::DeserializeOwned>(text: &str, env: &Env, what: &str) -> Result<T> {
    use figment::value::Value as Fig;
    let mut root: serde_yaml_ng::Value = if text.trim().is_empty() {
        serde_yaml_ng::Value::Mapping(Default::default())
    } else {
        serde_yaml_ng::from_str(text).map_err(|e| Error::Config(format!("{what}: {e}")))?
    };
    if root.is_null() {
        root = serde_yaml_ng::Value::Mapping(Default::default());
    }
    if !root.is_mapping() {
        return Err(Error::Config(format!(
            "{what}: the top level must be a mapping of sections"
        )));
    }
    substitute(&mut root, env)?;
    let file = match yaml_to_figment(&root, what)? {
        Fig::Dict(_, d) => d,
        // A mapping converts to a dict; kept as an error rather than a panic.
        _ => {
            return Err(Error::Config(format!(
                "{what}: the top level must be a mapping of sections"
            )));
        }
    };
    let overrides = env_layer(env, &file)?;
    let figment = figment::Figment::new()
        .merge(Layer {
            name: "config file",
            dict: file,
        })
        .merge(Layer {
            name: "environment overrides",
            dict: overrides,
        });
    figment.extract::<T>().map_err(|e| {
        // The first error only, as serde reports one.
        let merged = figment.extract::<Fig>().ok();
        let mut keys = e.path.as_slice();
        let kind = match &e.kind {
            // Worded as serde words it, under the section that has the key.
            figment::error::Kind::UnknownField(field, expected) => {
                if keys.last() == Some(field) {
                    keys = &keys[..keys.len() - 1];
                }
                let expected: Vec<String> = expected.iter().map(|f| format!("`{f}`")).collect();
                format!("unknown field `{field}`, expected one of {}", expected.join(", "))
            }
            other => other.to_string(),
        };
        let path = key_path(keys, merged.as_ref());
        if path.is_empty() {
            Error::Config(format!("{what}: {kind}"))
        } else {
            Error::Config(format!("{what}: {path}: {kind}"))
        }
    })
}

fn read_file(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| Error::io(format!("reading config {}", path.display()), e))
}

fn is_loopback(host: &str) -> bool {
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .map(|ip| ip.is_loopback())
        .unwrap_or(false)
}

fn check(cond: bool, msg: impl FnOnce() -> String) -> Result<()> {
    if cond { Ok(()) } else { Err(Error::Config(msg())) }
}

// ---------------------------------------------------------------- sections

/// `server:` — where a role listens.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSection {
    /// Address to bind.
    #[serde(deserialize_with = "lenient_string")]
    pub host: String,
    /// Port to bind; 0 picks a free one (printed at start).
    #[serde(deserialize_with = "lenient")]
    pub port: u16,
    /// Async runtime worker threads (0 = one per core).
    #[serde(deserialize_with = "lenient")]
    pub workers: usize,
    /// Most client connections served at once (more wait to be accepted).
    #[serde(deserialize_with = "lenient")]
    pub max_connections: usize,
    /// Time a client has to send a request's head (slow clients are cut off).
    pub header_read_timeout: Seconds,
    /// Time a client has to send a request's whole body.
    pub body_read_timeout: Seconds,
    /// Proxies (addresses or CIDR networks) whose `Forwarded` /
    /// `X-Forwarded-For` headers name the client (per-IP limits, logs).
    /// Empty (the default): the headers are ignored.
    pub trusted_proxies: Vec<String>,
}

impl Default for ServerSection {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: 8000,
            workers: 0,
            max_connections: 1024,
            header_read_timeout: Seconds::secs(10),
            body_read_timeout: Seconds::secs(120),
            trusted_proxies: Vec::new(),
        }
    }
}

impl ServerSection {
    /// The connection limits of the listener.
    pub fn connection_limits(&self) -> crate::serve::ConnectionLimits {
        crate::serve::ConnectionLimits {
            max_connections: self.max_connections,
            header_read_timeout: self.header_read_timeout.0,
            body_read_timeout: self.body_read_timeout.0,
        }
    }
}

/// Node selection policies (names as in config files).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum PolicyName {
    /// Round robin.
    RoundRobin,
    /// Weighted round robin.
    WeightedRoundRobin,
    /// Fewest requests in flight.
    LeastInflight,
    /// Power of two choices over EWMA latency (the default).
    #[default]
    P2c,
    /// Consistent hashing of the voice with bounded load.
    VoiceAffinity,
}

/// `registry:` — heartbeats and node selection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegistrySection {
    /// How often workers heartbeat (told to them at registration).
    pub heartbeat_interval: Seconds,
    /// A node with no heartbeat for this long is offline.
    pub dead_threshold: Seconds,
    /// An offline node is forgotten after this long.
    pub retention: Seconds,
    /// Node selection policy.
    pub policy: PolicyName,
    /// Each node's circuit breaker.
    pub breaker: vctts_core::breaker::BreakerConfig,
}

impl Default for RegistrySection {
    fn default() -> Self {
        Self {
            heartbeat_interval: Seconds::secs(10),
            dead_threshold: Seconds::secs(30),
            retention: Seconds::secs(300),
            policy: PolicyName::P2c,
            breaker: vctts_core::breaker::BreakerConfig::default(),
        }
    }
}

/// `cluster:` on the gateway — the gateway↔worker protocol.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterSection {
    /// Shared token; required when either side binds a non-loopback address.
    /// Without one a gateway generates a token and stores it in `token_file`.
    #[serde(deserialize_with = "lenient_opt_string", skip_serializing)]
    pub token: Option<String>,
    /// Where a generated token is stored (mode 0600); default
    /// `<storage.data_dir>/cluster.token`. Workers on the same host can read it
    /// through their own `cluster.token_file`.
    pub token_file: Option<PathBuf>,
    /// Time allowed to connect to a worker.
    pub connect_timeout: Seconds,
    /// Time allowed for a worker to start answering (first byte).
    pub first_byte_timeout: Seconds,
    /// Time allowed for a whole non-streamed node call.
    pub request_timeout: Seconds,
    /// How many other nodes a retryable failure is retried on.
    #[serde(deserialize_with = "lenient")]
    pub max_retries: usize,
    /// Stall detection, the floor of a request's progress deadline: a node
    /// that sends nothing for this long plus `stall_per_char` per character
    /// of the text (of one sentence, between the chunks of a stream) is
    /// abandoned for the request, failed over and marked suspect.
    pub stall_timeout: Seconds,
    /// Stall detection, the allowance per character of text added to
    /// `stall_timeout`.
    pub stall_per_char: Seconds,
}

impl Default for ClusterSection {
    fn default() -> Self {
        Self {
            token: None,
            token_file: None,
            connect_timeout: Seconds::secs(2),
            first_byte_timeout: Seconds::secs(60),
            request_timeout: Seconds::secs(300),
            max_retries: 2,
            stall_timeout: Seconds::secs(30),
            stall_per_char: Seconds(Duration::from_millis(200)),
        }
    }
}

/// `limiter:` — the layered rate limiter (0 means "no limit" for rpm fields).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimiterSection {
    /// Whether limits apply at all.
    #[serde(deserialize_with = "lenient")]
    pub enabled: bool,
    /// Requests per minute for the whole service.
    #[serde(deserialize_with = "lenient")]
    pub global_rpm: u32,
    /// Burst of the global limit (default: one minute's worth).
    #[serde(deserialize_with = "lenient_opt_u32")]
    pub global_burst: Option<u32>,
    /// Requests per minute per client IP.
    #[serde(deserialize_with = "lenient")]
    pub ip_rpm: u32,
    /// Burst of the per-IP limit (default: one minute's worth).
    #[serde(deserialize_with = "lenient_opt_u32")]
    pub ip_burst: Option<u32>,
    /// Requests per minute per node.
    #[serde(deserialize_with = "lenient")]
    pub node_rpm: u32,
    /// Requests running at once across the service.
    #[serde(deserialize_with = "lenient")]
    pub concurrent_limit: usize,
    /// Requests that may wait for a concurrency slot.
    #[serde(deserialize_with = "lenient")]
    pub queue_size: usize,
    /// How long a request may wait for a slot.
    pub queue_timeout: Seconds,
    /// Per-endpoint requests per minute, keyed by path (`/api/v3/synthesize`).
    pub endpoints: BTreeMap<String, u32>,
    /// Where the rate budgets are counted: `local` (this gateway's memory)
    /// or `redis` (shared by every gateway; see `redis_url`).
    pub backend: LimiterBackend,
    /// Redis for `backend: redis` (`redis://[:password@]host[:port][/db]`).
    pub redis_url: Option<String>,
    /// Longest wait for Redis on one request before the local limiter decides.
    pub redis_timeout: Seconds,
}

/// Where rate budgets are counted (`limiter.backend`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum LimiterBackend {
    /// In this gateway's memory (one gateway).
    #[default]
    Local,
    /// In Redis, shared by several gateways; local limits while Redis is down.
    Redis,
}

/// Where voices live (`storage.backend`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum StorageBackend {
    /// SQLite and WAV files under `data_dir` (one gateway).
    #[default]
    Sqlite,
    /// PostgreSQL at `url`, shared by several gateways.
    Postgres,
}

impl Default for LimiterSection {
    fn default() -> Self {
        Self {
            enabled: true,
            global_rpm: 1000,
            global_burst: None,
            ip_rpm: 100,
            ip_burst: None,
            node_rpm: 0,
            concurrent_limit: 50,
            queue_size: 100,
            queue_timeout: Seconds::secs(30),
            endpoints: BTreeMap::new(),
            backend: LimiterBackend::Local,
            redis_url: None,
            redis_timeout: Seconds(Duration::from_millis(250)),
        }
    }
}

/// `limits:` — request body limits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsSection {
    /// Longest text of one synthesis, in characters (engines may allow less).
    #[serde(deserialize_with = "lenient")]
    pub max_text_chars: usize,
    /// Largest JSON body.
    pub max_body_size: ByteSize,
    /// Largest multipart upload (audio plus fields).
    pub max_upload_size: ByteSize,
    /// Most items in one batch.
    #[serde(deserialize_with = "lenient")]
    pub max_batch_items: usize,
    /// Longest reference clip accepted for extraction and preprocessing.
    pub max_audio_seconds: Seconds,
    /// Most audio one request may make (a batch counts all its items): text
    /// that would read longer is refused with `413 output_too_long`, and a
    /// node's answer is cut at this length.
    pub max_output_duration: Seconds,
}

impl Default for LimitsSection {
    fn default() -> Self {
        Self {
            max_text_chars: 5000,
            max_body_size: ByteSize(1 << 20),
            max_upload_size: ByteSize(20 << 20),
            max_batch_items: 16,
            max_audio_seconds: Seconds::secs(120),
            max_output_duration: Seconds::secs(600),
        }
    }
}

/// `storage:` — where voices live.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageSection {
    /// Data folder (voice database and reference audio).
    pub data_dir: PathBuf,
    /// `sqlite` (default, under `data_dir`) or `postgres` (at `url`).
    pub backend: StorageBackend,
    /// PostgreSQL for `backend: postgres` (`postgres://user:pass@host:port/db`).
    pub url: Option<String>,
    /// Most connections to PostgreSQL.
    #[serde(deserialize_with = "lenient")]
    pub max_connections: usize,
}

impl Default for StorageSection {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("data"),
            backend: StorageBackend::Sqlite,
            url: None,
            max_connections: 16,
        }
    }
}

/// `logging:` — parsed and validated here; file output is configured by the
/// logging module of the binary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoggingSection {
    /// DEBUG, INFO, WARNING, ERROR or CRITICAL (any case).
    #[serde(deserialize_with = "lenient_string")]
    pub level: String,
    /// Log file; none logs to stderr only.
    pub file: Option<PathBuf>,
    /// Rotate the file at this size.
    pub max_size: ByteSize,
    /// Rotated files kept.
    #[serde(deserialize_with = "lenient")]
    pub backup_count: u32,
}

impl Default for LoggingSection {
    fn default() -> Self {
        Self {
            level: "INFO".into(),
            file: None,
            max_size: ByteSize(10 << 20),
            backup_count: 5,
        }
    }
}

impl LoggingSection {
    /// The `tracing` filter directive for the level.
    pub fn filter_directive(&self) -> &'static str {
        match self.level.to_ascii_uppercase().as_str() {
            "TRACE" => "trace",
            "DEBUG" => "debug",
            "WARNING" | "WARN" => "warn",
            "ERROR" | "CRITICAL" => "error",
            _ => "info",
        }
    }

    fn validate(&self) -> Result<()> {
        let ok = ["TRACE", "DEBUG", "INFO", "WARNING", "WARN", "ERROR", "CRITICAL"];
        check(ok.contains(&self.level.to_ascii_uppercase().as_str()), || {
            format!(
                "logging.level must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL, got {:?}",
                self.level
            )
        })?;
        check(self.max_size.0 >= 1024, || {
            format!(
                "logging.max_size must be at least 1KiB, got {} bytes",
                self.max_size.0
            )
        })
    }
}

/// One API key (`auth.api_keys`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyEntry {
    /// A name for logs.
    #[serde(deserialize_with = "lenient_string")]
    pub name: String,
    /// The key itself.
    #[serde(deserialize_with = "lenient_string", skip_serializing)]
    pub key: String,
    /// Scopes granted.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// The key's own requests per minute (none: only the shared limits apply).
    #[serde(default)]
    pub rpm: Option<u32>,
}

/// The password used when `auth.admin_password` is not set.
pub const DEFAULT_ADMIN_PASSWORD: &str = "admin123";

/// `auth:` — parsed and validated; admin login and API keys are enforced by
/// the auth module.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSection {
    /// Admin password.
    #[serde(deserialize_with = "lenient_opt_string", skip_serializing)]
    pub admin_password: Option<String>,
    /// Whether the public API requires an API key.
    #[serde(deserialize_with = "lenient")]
    pub api_key_enabled: bool,
    /// Known API keys.
    pub api_keys: Vec<ApiKeyEntry>,
}

impl AuthSection {
    fn validate(&self) -> Result<()> {
        if let Some(p) = &self.admin_password {
            check(p.chars().count() >= 4, || {
                "auth.admin_password must have at least 4 characters".into()
            })?;
        }
        for (i, k) in self.api_keys.iter().enumerate() {
            check(k.key.len() >= 16, || {
                format!("auth.api_keys[{i}].key must have at least 16 characters")
            })?;
        }
        check(!self.api_key_enabled || !self.api_keys.is_empty(), || {
            "auth.api_key_enabled is true but auth.api_keys is empty".into()
        })
    }
}

/// One announcement shown on the status page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Announcement {
    /// `info`, `warning` or `error`.
    #[serde(rename = "type", deserialize_with = "lenient_string")]
    pub kind: String,
    /// The text.
    #[serde(deserialize_with = "lenient_string")]
    pub message: String,
    /// Last day it is shown (`YYYY-MM-DD`).
    #[serde(default, deserialize_with = "lenient_opt_string")]
    pub expires: Option<String>,
}

impl Announcement {
    fn validate(&self, i: usize) -> Result<()> {
        check(["info", "warning", "error"].contains(&self.kind.as_str()), || {
            format!(
                "announcements[{i}].type must be info, warning or error, got {:?}",
                self.kind
            )
        })?;
        if let Some(e) = &self.expires {
            let b = e.as_bytes();
            let shape = b.len() == 10
                && b[4] == b'-'
                && b[7] == b'-'
                && b.iter()
                    .enumerate()
                    .all(|(j, c)| j == 4 || j == 7 || c.is_ascii_digit());
            check(shape, || {
                format!("announcements[{i}].expires must be YYYY-MM-DD, got {e:?}")
            })?;
        }
        Ok(())
    }
}

/// How one in-process engine is hosted (gateway `engines:` and standalone).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalEngineConfig {
    /// Which engine.
    #[serde(rename = "type", deserialize_with = "engine_kind")]
    pub kind: EngineKind,
    /// Model settings.
    #[serde(default)]
    pub model: ModelSection,
    /// Concurrency and memory settings.
    #[serde(default)]
    pub resources: ResourcesSection,
}

/// `model:` — where an engine's model is and how to run it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelSection {
    /// The models folder (holding `openvoice/`, `xtts_v2/`, ...), or one
    /// engine's folder inside it.
    pub path: PathBuf,
    /// `cpu` or `cuda`.
    #[serde(deserialize_with = "lenient_string")]
    pub device: String,
    /// Load at start; otherwise the node stays in standby until activated.
    #[serde(deserialize_with = "lenient")]
    pub auto_load: bool,
    /// Inference threads per request (0 = the engine's default).
    #[serde(deserialize_with = "lenient")]
    pub threads: usize,
    /// ONNX Runtime library to load (default: the engines' search order).
    pub runtime: Option<PathBuf>,
}

impl Default for ModelSection {
    fn default() -> Self {
        Self {
            path: PathBuf::from("models"),
            device: "cpu".into(),
            auto_load: true,
            threads: 0,
            runtime: None,
        }
    }
}

impl ModelSection {
    fn validate(&self, prefix: &str) -> Result<()> {
        check(
            self.device.parse::<vctts_engines::runtime::Device>().is_ok(),
            || {
                format!(
                    "{prefix}model.device must be cpu, cuda or cuda:N, got {:?}",
                    self.device
                )
            },
        )?;
        check(self.threads <= 256, || {
            format!("{prefix}model.threads must be at most 256, got {}", self.threads)
        })
    }
}

/// `resources:` — admission on a node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ResourcesSection {
    /// Requests inferring at once (0 = the engine's own default).
    #[serde(deserialize_with = "lenient")]
    pub max_concurrent: usize,
    /// Requests that may wait for an inference slot; more are refused.
    #[serde(deserialize_with = "lenient")]
    pub queue_size: usize,
    /// GPU memory the engine may use (informational on CPU).
    pub gpu_memory_limit: Option<ByteSize>,
}

impl Default for ResourcesSection {
    fn default() -> Self {
        Self {
            max_concurrent: 0,
            queue_size: 32,
            gpu_memory_limit: None,
        }
    }
}

impl ResourcesSection {
    fn validate(&self, prefix: &str) -> Result<()> {
        check(self.max_concurrent <= 1024, || {
            format!(
                "{prefix}resources.max_concurrent must be at most 1024, got {}",
                self.max_concurrent
            )
        })?;
        check(self.queue_size <= 100_000, || {
            format!(
                "{prefix}resources.queue_size must be at most 100000, got {}",
                self.queue_size
            )
        })
    }
}

// ---------------------------------------------------------------- gateway

/// The gateway's configuration (`config/gateway.yaml`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct GatewayConfig {
    /// Where it listens.
    pub server: ServerSection,
    /// Heartbeats and node selection.
    pub registry: RegistrySection,
    /// The cluster protocol.
    pub cluster: ClusterSection,
    /// Rate limits.
    pub limiter: LimiterSection,
    /// Request body limits.
    pub limits: LimitsSection,
    /// Voice storage.
    pub storage: StorageSection,
    /// Engine used when a request names none (default: the first with a ready node).
    #[serde(deserialize_with = "opt_engine_kind")]
    pub default_engine: Option<EngineKind>,
    /// In-process engines (none unless configured; standalone fills this).
    pub engines: Vec<LocalEngineConfig>,
    /// Logging.
    pub logging: LoggingSection,
    /// Authentication.
    pub auth: AuthSection,
    /// Announcements.
    pub announcements: Vec<Announcement>,
    /// Worker processes the gateway launches and supervises.
    pub local_workers: Vec<LocalWorkerConfig>,
    /// The OpenAI-compatible endpoints (`/v1/*`).
    pub openai: OpenAiSection,
    /// Other servers' APIs, mounted under their own paths when enabled.
    pub compat: CompatSection,
}

/// Other TTS servers' APIs (`compat:`), each off unless enabled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct CompatSection {
    /// daswer123's xtts-api-server (`/tts_to_audio/`, `/tts_stream`,
    /// `/speakers`, ...), as SillyTavern's XTTS provider calls it.
    pub xtts_api_server: bool,
    /// GPT-SoVITS's `api_v2.py` (`/tts`, `/set_refer_audio`, `/control` refused).
    pub gpt_sovits_api: bool,
}

/// The OpenAI-compatible endpoints (`openai:`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct OpenAiSection {
    /// OpenAI voice name (`alloy`, `nova`, ...) → the vctts voice it speaks
    /// with: a stored voice id or a built-in voice of the engine. Names not
    /// listed are spread over the engine's built-in voices.
    pub voices: BTreeMap<String, String>,
}

impl OpenAiSection {
    /// Checks the voice table; errors name the entry.
    pub fn validate(&self) -> Result<()> {
        for (name, voice) in &self.voices {
            check(!name.trim().is_empty(), || {
                "openai.voices: a voice name must not be empty".into()
            })?;
            check(vctts_core::VoiceId::new(voice.clone()).is_ok(), || {
                format!(
                    "openai.voices.{name} must be a voice id (letters, digits, '-', '_', '.'), got {voice:?}"
                )
            })?;
        }
        Ok(())
    }
}

/// One supervised worker process (`local_workers:`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalWorkerConfig {
    /// A name for logs and the admin API.
    #[serde(deserialize_with = "lenient_string")]
    pub name: String,
    /// The program; default: the running `vctts-server` binary.
    #[serde(default)]
    pub program: Option<PathBuf>,
    /// Its arguments, e.g. `["worker", "--config", "config/worker.yaml"]`.
    #[serde(default)]
    pub args: Vec<String>,
    /// Extra environment variables.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// The endpoint it registers with (`http://host:port`), which ties the
    /// registry's node to this process.
    #[serde(deserialize_with = "lenient_string")]
    pub endpoint: String,
    /// First restart delay after a crash (doubles per crash).
    #[serde(default = "default_backoff_initial")]
    pub backoff_initial: Seconds,
    /// Longest restart delay.
    #[serde(default = "default_backoff_max")]
    pub backoff_max: Seconds,
}

fn default_backoff_initial() -> Seconds {
    Seconds(Duration::from_millis(500))
}

fn default_backoff_max() -> Seconds {
    Seconds::secs(30)
}

impl LocalWorkerConfig {
    fn validate(&self, i: usize) -> Result<()> {
        check(!self.name.trim().is_empty(), || {
            format!("local_workers[{i}].name must not be empty")
        })?;
        check(
            self.endpoint.starts_with("http://") || self.endpoint.starts_with("https://"),
            || {
                format!(
                    "local_workers[{i}].endpoint must be an http(s) URL, got {:?}",
                    self.endpoint
                )
            },
        )?;
        check(self.backoff_initial.0 > Duration::ZERO, || {
            format!("local_workers[{i}].backoff_initial must be > 0")
        })?;
        check(self.backoff_max.0 >= self.backoff_initial.0, || {
            format!("local_workers[{i}].backoff_max must be at least local_workers[{i}].backoff_initial")
        })
    }
}

impl GatewayConfig {
    /// Parses and validates gateway YAML.
    pub fn parse(text: &str, env: &Env) -> Result<Self> {
        let cfg: Self = parse_layered(text, env, "gateway config")?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Reads, parses and validates a gateway config file.
    pub fn load(path: &Path, env: &Env) -> Result<Self> {
        Self::parse(&read_file(path)?, env)
    }

    /// Where a generated cluster token is kept: `cluster.token_file`, else
    /// `<storage.data_dir>/cluster.token`.
    pub fn cluster_token_path(&self) -> PathBuf {
        self.cluster
            .token_file
            .clone()
            .unwrap_or_else(|| self.storage.data_dir.join("cluster.token"))
    }

    /// Checks every field; errors name it.
    pub fn validate(&self) -> Result<()> {
        self.openai.validate()?;
        check(!self.server.host.trim().is_empty(), || {
            "server.host must not be empty".into()
        })?;
        check(self.server.workers <= 1024, || {
            format!("server.workers must be at most 1024, got {}", self.server.workers)
        })?;
        for (i, entry) in self.server.trusted_proxies.iter().enumerate() {
            parse_proxy(entry).map_err(|e| Error::Config(format!("server.trusted_proxies[{i}]: {e}")))?;
        }
        check(self.server.max_connections >= 1, || {
            "server.max_connections must be at least 1".into()
        })?;
        check(self.server.header_read_timeout.0 > Duration::ZERO, || {
            "server.header_read_timeout must be > 0".into()
        })?;
        check(self.server.body_read_timeout.0 > Duration::ZERO, || {
            "server.body_read_timeout must be > 0".into()
        })?;
        check(
            self.limits.max_output_duration.0 >= Duration::from_secs(1),
            || "limits.max_output_duration must be at least 1 s".into(),
        )?;
        let hb = self.registry.heartbeat_interval.0;
        let dead = self.registry.dead_threshold.0;
        check(hb >= Duration::from_millis(10), || {
            format!(
                "registry.heartbeat_interval must be at least 0.01 s, got {} s",
                hb.as_secs_f64()
            )
        })?;
        check(dead > hb, || {
            format!(
                "registry.dead_threshold ({} s) must be greater than registry.heartbeat_interval ({} s)",
                dead.as_secs_f64(),
                hb.as_secs_f64()
            )
        })?;
        self.registry.breaker.validate()?;
        check(self.registry.retention.0 >= dead, || {
            "registry.retention must be at least registry.dead_threshold".into()
        })?;
        if let Some(b) = self.limiter.global_burst {
            check(b > 0, || "limiter.global_burst must be > 0, got 0".into())?;
        }
        if let Some(b) = self.limiter.ip_burst {
            check(b > 0, || "limiter.ip_burst must be > 0, got 0".into())?;
        }
        if !is_loopback(&self.server.host) {
            check(self.cluster.token.is_some(), || {
                format!(
                    "cluster.token is required when server.host is not a loopback address (got {:?}); \
                     set it, e.g. via VCTTS_CLUSTER__TOKEN",
                    self.server.host
                )
            })?;
            let default_password = self
                .auth
                .admin_password
                .as_deref()
                .is_none_or(|p| p == DEFAULT_ADMIN_PASSWORD);
            check(!default_password, || {
                format!(
                    "auth.admin_password is the built-in default, which must not face a network: server.host \
                     is {:?}; set another password (e.g. via ADMIN_PASSWORD or VCTTS_AUTH__ADMIN_PASSWORD)",
                    self.server.host
                )
            })?;
        }
        if let Some(t) = &self.cluster.token {
            check(t.len() >= 16, || {
                "cluster.token must have at least 16 characters".into()
            })?;
        }
        check(self.cluster.connect_timeout.0 > Duration::ZERO, || {
            "cluster.connect_timeout must be > 0".into()
        })?;
        check(self.cluster.first_byte_timeout.0 > Duration::ZERO, || {
            "cluster.first_byte_timeout must be > 0".into()
        })?;
        check(self.cluster.request_timeout.0 > Duration::ZERO, || {
            "cluster.request_timeout must be > 0".into()
        })?;
        check(self.cluster.stall_timeout.0 > Duration::ZERO, || {
            "cluster.stall_timeout must be > 0".into()
        })?;
        check(self.cluster.max_retries <= 16, || {
            format!(
                "cluster.max_retries must be at most 16, got {}",
                self.cluster.max_retries
            )
        })?;
        let l = &self.limiter;
        if l.enabled {
            check(l.concurrent_limit > 0, || {
                "limiter.concurrent_limit must be > 0, got 0".into()
            })?;
            for (path, rpm) in &l.endpoints {
                check(path.starts_with('/'), || {
                    format!("limiter.endpoints key {path:?} must be a path starting with '/'")
                })?;
                check(*rpm > 0, || {
                    format!("limiter.endpoints.{path} must be > 0, got 0")
                })?;
            }
        }
        let b = &self.limits;
        check(b.max_text_chars > 0, || {
            "limits.max_text_chars must be > 0, got 0".into()
        })?;
        check(b.max_body_size.0 >= 1024, || {
            format!(
                "limits.max_body_size must be at least 1KiB, got {} bytes",
                b.max_body_size.0
            )
        })?;
        check(b.max_upload_size.0 >= 1024, || {
            format!(
                "limits.max_upload_size must be at least 1KiB, got {} bytes",
                b.max_upload_size.0
            )
        })?;
        check(b.max_batch_items > 0 && b.max_batch_items <= 1000, || {
            format!(
                "limits.max_batch_items must be 1..=1000, got {}",
                b.max_batch_items
            )
        })?;
        check(b.max_audio_seconds.0 >= Duration::from_secs(1), || {
            "limits.max_audio_seconds must be at least 1 s".into()
        })?;
        check(!self.storage.data_dir.as_os_str().is_empty(), || {
            "storage.data_dir must not be empty".into()
        })?;
        check(
            self.storage.backend != StorageBackend::Postgres
                || self.storage.url.as_deref().is_some_and(|u| !u.trim().is_empty()),
            || "storage.backend postgres needs storage.url (postgres://user:pass@host:port/db)".into(),
        )?;
        check(self.storage.max_connections > 0, || {
            "storage.max_connections must be at least 1".into()
        })?;
        check(
            self.limiter.backend != LimiterBackend::Redis
                || self
                    .limiter
                    .redis_url
                    .as_deref()
                    .is_some_and(|u| !u.trim().is_empty()),
            || "limiter.backend redis needs limiter.redis_url (redis://host:port)".into(),
        )?;
        check(self.limiter.redis_timeout.0 > Duration::ZERO, || {
            "limiter.redis_timeout must be above 0".into()
        })?;
        let mut seen = Vec::new();
        for (i, e) in self.engines.iter().enumerate() {
            check(!seen.contains(&e.kind), || {
                format!("engines[{i}].type {} is listed twice", e.kind)
            })?;
            seen.push(e.kind);
            e.model.validate(&format!("engines[{i}]."))?;
            e.resources.validate(&format!("engines[{i}]."))?;
        }
        self.logging.validate()?;
        self.auth.validate()?;
        for (i, a) in self.announcements.iter().enumerate() {
            a.validate(i)?;
        }
        for (i, w) in self.local_workers.iter().enumerate() {
            w.validate(i)?;
            check(!self.local_workers[..i].iter().any(|o| o.name == w.name), || {
                format!("local_workers[{i}].name {:?} is listed twice", w.name)
            })?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------- worker

/// `worker:` — which engine a worker hosts and where it listens.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerSection {
    /// The engine (`xtts`, `openvoice`, `gpt-sovits`).
    #[serde(rename = "type", deserialize_with = "engine_kind")]
    pub kind: EngineKind,
    /// Address to bind.
    #[serde(default = "default_host", deserialize_with = "lenient_string")]
    pub host: String,
    /// Port to bind (default per engine: xtts 8001, openvoice 8002, gpt-sovits 9880; 0 = any).
    #[serde(default, deserialize_with = "lenient_opt_u16")]
    pub port: Option<u16>,
    /// URL gateways use to reach this worker (default: from the bound address).
    #[serde(default, deserialize_with = "lenient_opt_string")]
    pub advertise_url: Option<String>,
    /// Relative weight for weighted policies.
    #[serde(default = "default_weight", deserialize_with = "lenient")]
    pub weight: u32,
    /// Free-form labels reported to the registry.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

fn default_host() -> String {
    "127.0.0.1".into()
}

fn default_weight() -> u32 {
    1
}

fn lenient_opt_u32<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<u32>, D::Error> {
    parse_opt_scalar(d, "a number", parse_from_str::<u32>)
}

fn lenient_opt_u16<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<u16>, D::Error> {
    parse_opt_scalar(d, "a number", parse_from_str::<u16>)
}

/// The default port of a worker of `kind` (SPEC §2).
pub fn default_worker_port(kind: EngineKind) -> u16 {
    match kind {
        EngineKind::Xtts => 8001,
        EngineKind::OpenVoice => 8002,
        EngineKind::GptSovits => 9880,
    }
}

/// One or more gateway URLs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum GatewayUrls {
    /// One URL.
    One(String),
    /// Several.
    Many(Vec<String>),
}

/// `gateway:` — where a worker registers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewaySection {
    /// Gateway base URL(s).
    pub url: GatewayUrls,
}

impl GatewaySection {
    /// The URLs, trimmed, without a trailing `/`.
    pub fn urls(&self) -> Vec<String> {
        let v = match &self.url {
            GatewayUrls::One(u) => vec![u.clone()],
            GatewayUrls::Many(us) => us.clone(),
        };
        v.into_iter()
            .map(|u| u.trim().trim_end_matches('/').to_string())
            .collect()
    }
}

/// `cluster:` on a worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkerClusterSection {
    /// Shared token. A worker does not start without one: set it here, in
    /// `VCTTS_CLUSTER__TOKEN`, or name the gateway's token file in `token_file`.
    #[serde(deserialize_with = "lenient_opt_string", skip_serializing)]
    pub token: Option<String>,
    /// A file holding the token (e.g. the gateway's generated
    /// `<data_dir>/cluster.token`), read when `token` is not set.
    pub token_file: Option<PathBuf>,
    /// Heartbeat interval used until a gateway states its own.
    pub heartbeat_interval: Seconds,
    /// Time allowed for one call to a gateway.
    pub request_timeout: Seconds,
    /// On shutdown, how long in-flight work may take to finish.
    pub drain_timeout: Seconds,
}

impl Default for WorkerClusterSection {
    fn default() -> Self {
        Self {
            token: None,
            token_file: None,
            heartbeat_interval: Seconds::secs(10),
            request_timeout: Seconds::secs(5),
            drain_timeout: Seconds::secs(60),
        }
    }
}

/// The worker's configuration (`config/worker.yaml`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerConfig {
    /// Engine and listening address.
    pub worker: WorkerSection,
    /// Gateways to register with.
    pub gateway: GatewaySection,
    /// Cluster protocol settings.
    #[serde(default)]
    pub cluster: WorkerClusterSection,
    /// Model settings.
    #[serde(default)]
    pub model: ModelSection,
    /// Admission settings.
    #[serde(default)]
    pub resources: ResourcesSection,
    /// Logging.
    #[serde(default)]
    pub logging: LoggingSection,
}

impl WorkerConfig {
    /// Parses and validates worker YAML.
    pub fn parse(text: &str, env: &Env) -> Result<Self> {
        let cfg: Self = parse_layered(text, env, "worker config")?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Reads, parses and validates a worker config file.
    pub fn load(path: &Path, env: &Env) -> Result<Self> {
        Self::parse(&read_file(path)?, env)
    }

    /// The cluster token: `cluster.token`, else the first line of
    /// `cluster.token_file`. A worker refuses to start without one (the
    /// control plane is never anonymous).
    pub fn cluster_token(&self) -> Result<String> {
        if let Some(t) = &self.cluster.token {
            return Ok(t.clone());
        }
        match &self.cluster.token_file {
            Some(p) => crate::cluster::auth::read_token_file(p),
            None => Err(Error::Config(
                "a worker needs the cluster token: set cluster.token (or VCTTS_CLUSTER__TOKEN), or point \
                 cluster.token_file at the gateway's token file (<data_dir>/cluster.token)"
                    .into(),
            )),
        }
    }

    /// The port to bind.
    pub fn port(&self) -> u16 {
        self.worker
            .port
            .unwrap_or_else(|| default_worker_port(self.worker.kind))
    }

    /// Checks every field; errors name it.
    pub fn validate(&self) -> Result<()> {
        check(!self.worker.host.trim().is_empty(), || {
            "worker.host must not be empty".into()
        })?;
        check(self.worker.weight > 0 && self.worker.weight <= 1000, || {
            format!("worker.weight must be 1..=1000, got {}", self.worker.weight)
        })?;
        let urls = self.gateway.urls();
        check(!urls.is_empty(), || {
            "gateway.url must name at least one gateway".into()
        })?;
        for (i, u) in urls.iter().enumerate() {
            check(u.starts_with("http://") || u.starts_with("https://"), || {
                format!("gateway.url[{i}] must start with http:// or https://, got {u:?}")
            })?;
        }
        if let Some(a) = &self.worker.advertise_url {
            check(a.starts_with("http://") || a.starts_with("https://"), || {
                format!("worker.advertise_url must start with http:// or https://, got {a:?}")
            })?;
        }
        let gateway_remote = urls.iter().any(|u| {
            let host = u
                .split("://")
                .nth(1)
                .unwrap_or("")
                .split(['/', ':'])
                .next()
                .unwrap_or("");
            // `[::1]:8000` splits oddly on ':'; treat bracketed hosts separately.
            let host = if u.contains("://[") {
                u.split("://[")
                    .nth(1)
                    .and_then(|r| r.split(']').next())
                    .unwrap_or("")
            } else {
                host
            };
            !is_loopback(host)
        });
        if !is_loopback(&self.worker.host) || gateway_remote {
            check(self.cluster.token.is_some(), || {
                format!(
                    "cluster.token is required when worker.host ({:?}) or a gateway is not on a loopback \
                     address; set it, e.g. via VCTTS_CLUSTER__TOKEN",
                    self.worker.host
                )
            })?;
        }
        if let Some(t) = &self.cluster.token {
            check(t.len() >= 16, || {
                "cluster.token must have at least 16 characters".into()
            })?;
        }
        check(
            self.cluster.heartbeat_interval.0 >= Duration::from_millis(10),
            || "cluster.heartbeat_interval must be at least 0.01 s".into(),
        )?;
        check(self.cluster.request_timeout.0 > Duration::ZERO, || {
            "cluster.request_timeout must be > 0".into()
        })?;
        self.model.validate("")?;
        self.resources.validate("")?;
        self.logging.validate()
    }
}

/// Whether `host` is a loopback address (`127.0.0.0/8`, `::1`, `localhost`).
pub fn host_is_loopback(host: &str) -> bool {
    is_loopback(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(r: Result<impl std::fmt::Debug>) -> String {
        let e = r.unwrap_err();
        assert_eq!(e.code(), "invalid_config");
        e.to_string()
    }

    #[test]
    fn durations_and_sizes() {
        let d = |s| parse_duration(s).unwrap();
        assert_eq!(d("10"), Duration::from_secs(10));
        assert_eq!(d("0.25"), Duration::from_millis(250));
        assert_eq!(d("500ms"), Duration::from_millis(500));
        assert_eq!(d("2m"), Duration::from_secs(120));
        assert_eq!(d("1h"), Duration::from_secs(3600));
        assert!(parse_duration("-1").is_err());
        assert!(parse_duration("soon").is_err());
        let s = |x| parse_size(x).unwrap();
        assert_eq!(s("1024"), 1024);
        assert_eq!(s("10MB"), 10_000_000);
        assert_eq!(s("10MiB"), 10 << 20);
        assert_eq!(s("512kb"), 512_000);
        assert_eq!(s("6GiB"), 6 << 30);
        assert_eq!(s("1.5KiB"), 1536);
        assert!(parse_size("lots").is_err());
        assert!(parse_size("-3MB").is_err());
    }

    #[test]
    fn substitution() {
        let env = Env::from_pairs([("A", "1"), ("EMPTY", "")]);
        assert_eq!(substitute_str("x${A}y", &env).unwrap(), "x1y");
        assert_eq!(substitute_str("${B:def}", &env).unwrap(), "def");
        assert_eq!(substitute_str("${EMPTY:def}", &env).unwrap(), "");
        assert_eq!(substitute_str("$$5 $x", &env).unwrap(), "$5 $x");
        assert!(
            substitute_str("${B}", &env)
                .unwrap_err()
                .to_string()
                .contains("B is not set")
        );
        assert!(substitute_str("${A", &env).is_err());
        assert!(substitute_str("${a-b}", &env).is_err());
    }

    #[test]
    fn spec_gateway_example_parses() {
        let text = r#"
server:   { host: 0.0.0.0, port: 8000, workers: 4 }
registry: { heartbeat_interval: 10, dead_threshold: 30 }
limiter:  { enabled: true, global_rpm: 1000, ip_rpm: 100, concurrent_limit: 50 }
logging:  { level: INFO, file: logs/gateway.log, max_size: 10MB, backup_count: 5 }
auth:     { admin_password: "${ADMIN_PASSWORD:admin123}", api_key_enabled: false }
cluster:  { token: "${TOKEN}" }
announcements:
  - { type: warning, message: "maintenance notice", expires: "2025-12-01" }
"#;
        // The default admin password does not face a network.
        let env = Env::from_pairs([("TOKEN", "0123456789abcdef0123")]);
        let e = err(GatewayConfig::parse(text, &env));
        assert!(e.contains("auth.admin_password") && e.contains("0.0.0.0"), "{e}");
        let env = Env::from_pairs([
            ("TOKEN", "0123456789abcdef0123"),
            ("ADMIN_PASSWORD", "a-real-password"),
        ]);
        let c = GatewayConfig::parse(text, &env).unwrap();
        assert_eq!(c.server.port, 8000);
        assert_eq!(c.server.workers, 4);
        assert_eq!(c.registry.dead_threshold.0, Duration::from_secs(30));
        // The SPEC writes `10MB`: decimal, as the unit says.
        assert_eq!(c.logging.max_size.0, 10_000_000);
        assert_eq!(c.auth.admin_password.as_deref(), Some("a-real-password"));
        assert_eq!(c.announcements[0].kind, "warning");
        // Without the token a non-loopback bind is refused, naming the key.
        let e = err(GatewayConfig::parse(
            &text.replace("cluster:  { token: \"${TOKEN}\" }", ""),
            &Env::empty(),
        ));
        assert!(e.contains("cluster.token is required"), "{e}");
    }

    #[test]
    fn unknown_keys_and_bad_values_name_the_key() {
        let e = err(GatewayConfig::parse("limiter: { ip_rmp: 5 }", &Env::empty()));
        assert!(e.contains("limiter") && e.contains("ip_rmp"), "{e}");
        let e = err(GatewayConfig::parse("serverx: {}", &Env::empty()));
        assert!(e.contains("serverx"), "{e}");
        let e = err(GatewayConfig::parse("server: { port: lots }", &Env::empty()));
        assert!(e.contains("server.port"), "{e}");
        let e = err(GatewayConfig::parse(
            "registry: { heartbeat_interval: 5, dead_threshold: 2 }",
            &Env::empty(),
        ));
        assert!(e.contains("registry.dead_threshold"), "{e}");
        let e = err(GatewayConfig::parse(
            "limiter: { concurrent_limit: 0 }",
            &Env::empty(),
        ));
        assert!(e.contains("limiter.concurrent_limit must be > 0"), "{e}");
        let e = err(GatewayConfig::parse("logging: { level: LOUD }", &Env::empty()));
        assert!(e.contains("logging.level"), "{e}");
        let e = err(GatewayConfig::parse("default_engine: melo", &Env::empty()));
        assert!(e.contains("default_engine"), "{e}");
        let e = err(GatewayConfig::parse(
            "announcements: [{type: note, message: x}]",
            &Env::empty(),
        ));
        assert!(e.contains("announcements[0].type"), "{e}");
        let e = err(GatewayConfig::parse("- 1\n- 2", &Env::empty()));
        assert!(e.contains("mapping"), "{e}");
    }

    #[test]
    fn env_overrides_win_over_the_file() {
        let env = Env::from_pairs([
            ("VCTTS_LIMITER__IP_RPM", "7"),
            ("VCTTS_SERVER__PORT", "9001"),
            ("VCTTS_PORT", "1"), // a flag's variable, not an override
        ]);
        let c = GatewayConfig::parse("limiter: { ip_rpm: 100 }", &env).unwrap();
        assert_eq!(c.limiter.ip_rpm, 7);
        assert_eq!(c.server.port, 9001);
        let env = Env::from_pairs([("VCTTS_LIMITER__NOPE", "1")]);
        let e = err(GatewayConfig::parse("", &env));
        assert!(e.contains("nope"), "{e}");
    }

    #[test]
    fn overrides_are_typed_and_need_sections() {
        // A number or a boolean stays one; anything else is a string.
        let env = Env::from_pairs([
            ("VCTTS_LIMITER__ENABLED", "false"),
            ("VCTTS_AUTH__ADMIN_PASSWORD", "12345678-x"),
        ]);
        let c = GatewayConfig::parse("", &env).unwrap();
        assert!(!c.limiter.enabled);
        assert_eq!(c.auth.admin_password.as_deref(), Some("12345678-x"));
        // Crossing a value of the file that is not a section is refused.
        let env = Env::from_pairs([("VCTTS_SERVER__PORT__X", "1")]);
        let e = err(GatewayConfig::parse("server: { port: 8000 }", &env));
        assert!(
            e.contains("VCTTS_SERVER__PORT__X") && e.contains("server.port is not a section"),
            "{e}"
        );
        // Or one an earlier override set.
        let env = Env::from_pairs([("VCTTS_SERVER__PORT", "1"), ("VCTTS_SERVER__PORT__X", "1")]);
        let e = err(GatewayConfig::parse("", &env));
        assert!(e.contains("server.port is not a section"), "{e}");
        // An override reaches into a section the file leaves empty.
        let env = Env::from_pairs([("VCTTS_SERVER__PORT", "9002")]);
        assert_eq!(
            GatewayConfig::parse(
                "server:
", &env
            )
            .unwrap()
            .server
            .port,
            9002
        );
    }

    #[test]
    fn empty_sections_take_their_defaults() {
        let c = GatewayConfig::parse(
            "server:
limiter:
announcements:
",
            &Env::empty(),
        )
        .unwrap();
        assert_eq!(c, GatewayConfig::default());
    }

    #[test]
    fn error_paths_are_written_as_users_write_keys() {
        let e = err(GatewayConfig::parse(
            "announcements: [{type: info, message: x}, {type: info, message: y, colour: red}]",
            &Env::empty(),
        ));
        assert!(
            e.starts_with("invalid configuration: gateway config: announcements[1]: "),
            "{e}"
        );
        assert!(
            e.contains("unknown field `colour`, expected one of `type`"),
            "{e}"
        );
        let e = err(GatewayConfig::parse("serverx: {}", &Env::empty()));
        assert!(e.contains("gateway config: unknown field `serverx`"), "{e}");
        let e = err(GatewayConfig::parse("limiter: { ip_rpm: many }", &Env::empty()));
        assert!(
            e.starts_with("invalid configuration: gateway config: limiter.ip_rpm: "),
            "{e}"
        );
        assert!(e.contains("many"), "{e}");
    }

    #[test]
    fn openai_voice_table_is_checked() {
        let gw = GatewayConfig::parse(
            "openai: { voices: { alloy: en_US-joe-medium, nova: alice } }",
            &Env::empty(),
        )
        .unwrap();
        assert_eq!(gw.openai.voices["nova"], "alice");
        let e = err(GatewayConfig::parse(
            "openai: { voices: { alloy: \"../x\" } }",
            &Env::empty(),
        ));
        assert!(e.contains("openai.voices.alloy"), "{e}");
        let e = err(GatewayConfig::parse("openai: { colours: {} }", &Env::empty()));
        assert!(e.contains("colours"), "{e}");
    }

    #[test]
    fn trusted_proxies_are_addresses_or_networks() {
        let c = GatewayConfig::parse(
            "server: { trusted_proxies: [127.0.0.1, 10.0.0.0/8, \"::1\"] }",
            &Env::empty(),
        )
        .unwrap();
        assert_eq!(c.server.trusted_proxies.len(), 3);
        assert!(
            GatewayConfig::parse("", &Env::empty())
                .unwrap()
                .server
                .trusted_proxies
                .is_empty()
        );
        let e = err(GatewayConfig::parse(
            "server: { trusted_proxies: [10.0.0.0/8, nginx] }",
            &Env::empty(),
        ));
        assert!(
            e.contains("server.trusted_proxies[1]") && e.contains("nginx"),
            "{e}"
        );
    }

    #[test]
    fn shared_state_backends() {
        let c = GatewayConfig::parse("", &Env::empty()).unwrap();
        assert_eq!(c.storage.backend, StorageBackend::Sqlite);
        assert_eq!(c.limiter.backend, LimiterBackend::Local);
        let env = Env::from_pairs([
            ("VCTTS_DATABASE_URL", "postgres://vctts:pw@db/vctts"),
            ("VCTTS_REDIS_URL", "redis://cache:6379"),
        ]);
        let c = GatewayConfig::parse(
            "storage: { backend: postgres, url: \"${VCTTS_DATABASE_URL}\", max_connections: 4 }\n\
             limiter: { backend: redis, redis_url: \"${VCTTS_REDIS_URL}\", redis_timeout: 100ms }",
            &env,
        )
        .unwrap();
        assert_eq!(c.storage.backend, StorageBackend::Postgres);
        assert_eq!(c.storage.url.as_deref(), Some("postgres://vctts:pw@db/vctts"));
        assert_eq!(c.storage.max_connections, 4);
        assert_eq!(c.limiter.backend, LimiterBackend::Redis);
        assert_eq!(c.limiter.redis_url.as_deref(), Some("redis://cache:6379"));
        assert_eq!(c.limiter.redis_timeout.0, Duration::from_millis(100));
        let e = err(GatewayConfig::parse(
            "storage: { backend: postgres }",
            &Env::empty(),
        ));
        assert!(e.contains("storage.url"), "{e}");
        let e = err(GatewayConfig::parse("limiter: { backend: redis }", &Env::empty()));
        assert!(e.contains("limiter.redis_url"), "{e}");
        let e = err(GatewayConfig::parse("storage: { backend: mysql }", &Env::empty()));
        assert!(e.contains("mysql"), "{e}");
    }

    #[test]
    fn shipped_config_files_parse() {
        let gw = GatewayConfig::parse(include_str!("../../config/gateway.yaml"), &Env::empty()).unwrap();
        assert_eq!(gw.server.host, "127.0.0.1");
        assert_eq!(gw.server.port, 8000);
        assert_eq!(gw.cluster.token, None);
        assert_eq!(gw.limiter.endpoints["/api/v3/synthesize/batch"], 60);
        assert_eq!(gw.auth.admin_password.as_deref(), Some("admin123"));
        // Binding everywhere needs the token, which the environment gives.
        let env = Env::from_pairs([("VCTTS_HOST", "0.0.0.0")]);
        let e = err(GatewayConfig::parse(
            include_str!("../../config/gateway.yaml"),
            &env,
        ));
        assert!(e.contains("cluster.token"), "{e}");
        let env = Env::from_pairs([
            ("VCTTS_HOST", "0.0.0.0"),
            ("VCTTS_CLUSTER_TOKEN", "0123456789abcdef-xyz"),
            ("ADMIN_PASSWORD", "a-real-password"),
        ]);
        let gw = GatewayConfig::parse(include_str!("../../config/gateway.yaml"), &env).unwrap();
        assert_eq!(gw.cluster.token.as_deref(), Some("0123456789abcdef-xyz"));

        let w = WorkerConfig::parse(include_str!("../../config/worker.yaml"), &Env::empty()).unwrap();
        assert_eq!(w.worker.kind, EngineKind::OpenVoice);
        assert_eq!(w.port(), 8002);
        assert_eq!(w.gateway.urls(), vec!["http://localhost:8000".to_string()]);
        assert_eq!(w.resources.max_concurrent, 1);
        let env = Env::from_pairs([("VCTTS_ENGINE", "xtts"), ("VCTTS_WORKER__PORT", "8001")]);
        let w = WorkerConfig::parse(include_str!("../../config/worker.yaml"), &env).unwrap();
        assert_eq!((w.worker.kind, w.port()), (EngineKind::Xtts, 8001));
    }

    #[test]
    fn defaults_are_valid() {
        let c = GatewayConfig::parse("", &Env::empty()).unwrap();
        assert_eq!(c, GatewayConfig::default());
        assert_eq!(c.registry.policy, PolicyName::P2c);
    }

    #[test]
    fn spec_worker_example_parses() {
        let text = r#"
worker:    { type: xtts, host: 0.0.0.0, port: 8001 }
gateway:   { url: "http://localhost:8000" }
cluster:   { token: "0123456789abcdef" }
model:     { path: ./models/xtts_v2, device: cuda, auto_load: false }
resources: { max_concurrent: 5, gpu_memory_limit: 6GiB }
"#;
        let c = WorkerConfig::parse(text, &Env::empty()).unwrap();
        assert_eq!(c.worker.kind, EngineKind::Xtts);
        assert_eq!(c.port(), 8001);
        assert!(!c.model.auto_load);
        assert_eq!(c.resources.gpu_memory_limit, Some(ByteSize(6 << 30)));
        assert_eq!(c.gateway.urls(), vec!["http://localhost:8000".to_string()]);

        let e = err(WorkerConfig::parse(
            &text.replace("xtts,", "melo,"),
            &Env::empty(),
        ));
        assert!(e.contains("worker.type"), "{e}");
        let e = err(WorkerConfig::parse(
            &text.replace("cluster:   { token: \"0123456789abcdef\" }", ""),
            &Env::empty(),
        ));
        assert!(e.contains("cluster.token is required"), "{e}");
        let e = err(WorkerConfig::parse(&text.replace("cuda", "tpu"), &Env::empty()));
        assert!(e.contains("model.device"), "{e}");
        let loopback =
            "worker: { type: openvoice }\ngateway: { url: [\"http://127.0.0.1:1\", \"http://[::1]:2/\"] }";
        let c = WorkerConfig::parse(loopback, &Env::empty()).unwrap();
        assert_eq!(c.port(), 8002);
        assert_eq!(c.gateway.urls()[1], "http://[::1]:2");
        let e = err(WorkerConfig::parse("worker: { type: openvoice }", &Env::empty()));
        assert!(e.contains("gateway"), "{e}");
    }
}
