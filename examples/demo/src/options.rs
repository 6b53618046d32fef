//! Command-line options.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

pub(crate) const USAGE: &str = "usage: example-demo [--addr ADDR] [--framework axum|warp|poem] \
[--heartbeat-ms N] [--retry-ms N] [--tick-ms N] [--log memory|redis://HOST:PORT] [--log-capacity N] \
[--ring-capacity N] [--accel-buffering on|off] [--tls-cert PEM --tls-key PEM] [--auth-token TOKEN] \
[--publish-addr ADDR]";

/// The largest `--ring-capacity`: a topic's ring is allocated whole (72 bytes an event)
/// when the topic gets its first subscriber, and clients name topics, so the flag is bounded
/// (2^20 events, 72 MiB per topic).
const MAX_RING_CAPACITY: usize = 1 << 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Framework {
    Axum,
    Warp,
    Poem,
}

impl Framework {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Axum => "axum",
            Self::Warp => "warp",
            Self::Poem => "poem",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum LogChoice {
    Memory,
    Redis(String),
}

#[derive(Clone, Debug)]
pub(crate) struct Options {
    pub(crate) addr: SocketAddr,
    pub(crate) framework: Framework,
    pub(crate) heartbeat: Duration,
    pub(crate) retry: Option<Duration>,
    pub(crate) tick: Option<Duration>,
    pub(crate) log: LogChoice,
    pub(crate) log_capacity: usize,
    /// `--ring-capacity`: live events each topic buffers for slow subscribers
    /// ([`tower_sse::Hub::capacity`]).
    pub(crate) ring_capacity: usize,
    /// `X-Accel-Buffering: no` on event streams; `off` is for showing what nginx does
    /// without it (the end-to-end control run).
    pub(crate) accel_buffering: bool,
    /// `--tls-cert` and `--tls-key`: serve HTTPS only (HTTP/2 and HTTP/1.1 by ALPN).
    pub(crate) tls: Option<TlsFiles>,
    /// `--auth-token`: what `private/` topics need; `None` refuses them.
    pub(crate) auth_token: Option<String>,
    /// `--publish-addr`: `POST /publish` also on this listener, served by a runtime of its
    /// own (axum, plain HTTP).
    pub(crate) publish_addr: Option<SocketAddr>,
}

/// The PEM files behind `--tls-cert` and `--tls-key`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TlsFiles {
    /// The certificate chain, leaf first.
    pub(crate) cert: PathBuf,
    /// The private key: PKCS#8, PKCS#1 or SEC1.
    pub(crate) key: PathBuf,
}

impl Options {
    pub(crate) fn parse(mut args: impl Iterator<Item = String>) -> Result<Self, String> {
        let mut options = Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 3000)),
            framework: Framework::Axum,
            heartbeat: Duration::from_millis(15_000),
            retry: None,
            tick: Some(Duration::from_millis(1000)),
            log: LogChoice::Memory,
            log_capacity: 10_000,
            ring_capacity: tower_sse::DEFAULT_CAPACITY,
            accel_buffering: true,
            tls: None,
            auth_token: None,
            publish_addr: None,
        };
        let (mut tls_cert, mut tls_key) = (None, None);
        while let Some(flag) = args.next() {
            let (flag, inline) = match flag.split_once('=') {
                Some((flag, value)) => (flag.to_owned(), Some(value.to_owned())),
                None => (flag, None),
            };
            if flag == "--help" || flag == "-h" {
                return Err("help requested".to_owned());
            }
            let value = match inline.or_else(|| args.next()) {
                Some(value) => value,
                None => return Err(format!("{flag} needs a value")),
            };
            let millis = |value: &str| {
                value
                    .parse::<u64>()
                    .map_err(|_| format!("{flag} takes milliseconds, not {value:?}"))
            };
            match flag.as_str() {
                "--addr" => {
                    options.addr = value
                        .parse()
                        .map_err(|_| format!("--addr takes HOST:PORT, not {value:?}"))?;
                }
                "--framework" => {
                    options.framework = match value.as_str() {
                        "axum" => Framework::Axum,
                        "warp" => Framework::Warp,
                        "poem" => Framework::Poem,
                        _ => {
                            return Err(format!(
                                "--framework is axum, warp or poem, not {value:?}"
                            ));
                        }
                    };
                }
                "--heartbeat-ms" => options.heartbeat = Duration::from_millis(millis(&value)?),
                "--retry-ms" => options.retry = Some(Duration::from_millis(millis(&value)?)),
                "--tick-ms" => options.tick = super::nonzero(millis(&value)?),
                "--log" => {
                    options.log = if value == "memory" {
                        LogChoice::Memory
                    } else if value.starts_with("redis://") {
                        LogChoice::Redis(value)
                    } else {
                        return Err(format!(
                            "--log is memory or redis://HOST:PORT, not {value:?}"
                        ));
                    };
                }
                "--log-capacity" => {
                    options.log_capacity =
                        value.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                            format!("--log-capacity takes a positive count, not {value:?}")
                        })?;
                }
                "--ring-capacity" => {
                    options.ring_capacity = value
                        .parse()
                        .ok()
                        .filter(|n| (1..=MAX_RING_CAPACITY).contains(n))
                        .ok_or_else(|| {
                            format!(
                                "--ring-capacity takes a count from 1 to {MAX_RING_CAPACITY}, not {value:?}"
                            )
                        })?;
                }
                "--accel-buffering" => {
                    options.accel_buffering = match value.as_str() {
                        "on" => true,
                        "off" => false,
                        _ => return Err(format!("--accel-buffering is on or off, not {value:?}")),
                    };
                }
                "--tls-cert" => tls_cert = Some(PathBuf::from(value)),
                "--tls-key" => tls_key = Some(PathBuf::from(value)),
                "--auth-token" => {
                    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_graphic()) {
                        return Err(
                            "--auth-token takes a non-empty token of visible ASCII".to_owned()
                        );
                    }
                    options.auth_token = Some(value);
                }
                "--publish-addr" => {
                    options.publish_addr =
                        Some(value.parse().map_err(|_| {
                            format!("--publish-addr takes HOST:PORT, not {value:?}")
                        })?);
                }
                _ => return Err(format!("unknown option {flag}")),
            }
        }
        options.tls = match (tls_cert, tls_key) {
            (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
            (None, None) => None,
            (Some(_), None) => return Err("--tls-cert needs --tls-key".to_owned()),
            (None, Some(_)) => return Err("--tls-key needs --tls-cert".to_owned()),
        };
        if options.publish_addr.is_some()
            && (options.framework != Framework::Axum || options.tls.is_some())
        {
            return Err("--publish-addr is for --framework axum over plain HTTP".to_owned());
        }
        Ok(options)
    }
}
