//! A distributed node's configuration: its name `name@host:port` (where it listens and how
//! others reach it), its cookie, and the limits of its connections; in code, or from the
//! environment (`FERROTP_NODE`, `FERROTP_COOKIE`), as libprocess reads `LIBPROCESS_IP` and
//! `LIBPROCESS_PORT`.

use std::{sync::Arc, time::Duration};

use super::{
    authenticate,
    frame::{Codec, DEFAULT_MAX, HANDSHAKE_MAX},
    handshake::{Cookie, MAX_NAME, WeakCookie, valid_name},
};

/// A node's name: `name@host:port`, the host an IP address or a host name (IPv6 in brackets,
/// `n@[::1]:4370`), the port 0 for one the operating system chooses.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct NodeName {
    full: Arc<str>,
    /// Where `@` is, and where the port's `:` is.
    at: usize,
    colon: usize,
    port: u16,
}

/// Why a string is not a node name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    /// Not `name@host:port`.
    #[error("`{0}` is not `name@host:port`")]
    Shape(String),
    /// The port is not a number from 0 to 65535.
    #[error("`{0}` has a port that is not a number from 0 to 65535")]
    Port(String),
    /// Characters a node name cannot have, or too long.
    #[error(
        "`{0}` is not a node name: at most {MAX_NAME} bytes of printable ASCII, no spaces, and \
         letters, digits, `_`, `-` or `.` before the `@`"
    )]
    Characters(String),
}

impl NodeName {
    pub(crate) fn parse(full: &str) -> Result<NodeName, NameError> {
        let shape = || NameError::Shape(full.to_owned());
        if !valid_name(full) {
            return Err(NameError::Characters(full.to_owned()));
        }
        let (name, address) = full.split_once('@').ok_or_else(shape)?;
        let name_ok = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
        if !name_ok {
            return Err(NameError::Characters(full.to_owned()));
        }
        let (host, port) = match address.strip_prefix('[') {
            Some(v6) => {
                let (host, rest) = v6.split_once(']').ok_or_else(shape)?;
                (host, rest.strip_prefix(':').ok_or_else(shape)?)
            }
            None => address.rsplit_once(':').ok_or_else(shape)?,
        };
        if host.is_empty()
            || host.contains('@')
            || (address.starts_with('[') && !host.contains(':'))
        {
            return Err(shape());
        }
        let port = port
            .parse::<u16>()
            .map_err(|_| NameError::Port(full.to_owned()))?;
        Ok(NodeName {
            full: full.into(),
            at: name.len(),
            colon: full.len() - port_len(full),
            port,
        })
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.full
    }

    /// What comes before the `@`.
    #[cfg(test)]
    pub(crate) fn name(&self) -> &str {
        &self.full[..self.at]
    }

    /// The address to listen on and to connect to: `host:port` (`[v6]:port`).
    pub(crate) fn addr(&self) -> &str {
        &self.full[self.at + 1..]
    }

    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// The same name with another port: the one the OS chose for port 0.
    pub(crate) fn with_port(&self, port: u16) -> NodeName {
        let full = format!("{}:{port}", &self.full[..self.colon - 1]);
        NodeName {
            colon: full.len() - port_len(&full),
            full: full.into(),
            at: self.at,
            port,
        }
    }
}

/// The number of characters of the port at the end of `full` (after the last `:`).
fn port_len(full: &str) -> usize {
    full.len() - full.rfind(':').map_or(full.len(), |colon| colon + 1)
}

/// Why a node's configuration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The node name is not `name@host:port`.
    #[error(transparent)]
    Name(#[from] NameError),
    /// The cookie is too short to be a secret.
    #[error(transparent)]
    Cookie(#[from] WeakCookie),
    /// `FERROTP_NODE` is set without `FERROTP_COOKIE`.
    #[error("FERROTP_NODE is set but FERROTP_COOKIE is not: a distributed node needs a cookie")]
    NoCookie,
    /// A frame cap too small for the handshake.
    #[error("a maximum frame of {0} bytes is below the handshake's {HANDSHAKE_MAX}")]
    FrameTooSmall(usize),
}

/// How many incoming handshakes may run at once, unless configured otherwise.
pub(crate) const DEFAULT_MAX_HANDSHAKES: usize = 1024;

/// How many bytes may wait to be sent to one peer, unless configured otherwise.
pub(crate) const DEFAULT_MAX_OUTBOX: usize = 64 << 20;

/// How long a peer may stay silent before its connection is taken as lost, unless configured
/// otherwise (Erlang's default `net_ticktime`).
pub const DEFAULT_TICKTIME: Duration = Duration::from_secs(60);

/// The shortest tick time a node takes (see [`DistConfig::net_ticktime`]).
pub const MIN_TICKTIME: Duration = Duration::from_millis(100);

/// How a node takes part in distribution: its name, its cookie, and the limits of its
/// connections.
///
/// ```
/// use std::time::Duration;
/// use ferrotp::dist::DistConfig;
///
/// let config = DistConfig::new("app@127.0.0.1:0", "a secret of 16 bytes or more")?
///     .net_ticktime(Duration::from_secs(10));
/// # Ok::<(), ferrotp::dist::ConfigError>(())
/// ```
#[derive(Debug, Clone)]
pub struct DistConfig {
    pub(crate) name: NodeName,
    pub(crate) cookie: Cookie,
    pub(crate) handshake_timeout: Duration,
    /// How long an incoming connection may take to send its first frame: a connection that
    /// says nothing holds one of the `max_handshakes` places for this long, not the whole
    /// handshake timeout.
    pub(crate) first_frame_timeout: Duration,
    /// How many incoming handshakes may run at once; a connection over it is closed at once.
    pub(crate) max_handshakes: usize,
    pub(crate) max_frame: usize,
    /// At least `max_frame`: both setters keep it so.
    pub(crate) max_outbox: usize,
    pub(crate) net_ticktime: Duration,
    pub(crate) codec: Codec,
    #[cfg(feature = "tls")]
    pub(crate) tls: Option<super::tls::TlsConfig>,
}

impl DistConfig {
    /// A node named `name` (`name@host:port`, where it listens; port 0 for one the operating
    /// system chooses, which the node's name then carries) with the shared secret `cookie`
    /// (at least 16 bytes; it never crosses the network).
    ///
    /// # Errors
    ///
    /// [`ConfigError`] for a malformed name or a short cookie.
    pub fn new(name: &str, cookie: impl AsRef<[u8]>) -> Result<Self, ConfigError> {
        Ok(DistConfig {
            name: NodeName::parse(name)?,
            cookie: Cookie::new(cookie)?,
            handshake_timeout: authenticate::DEFAULT_TIMEOUT,
            first_frame_timeout: authenticate::FIRST_FRAME_TIMEOUT,
            max_handshakes: DEFAULT_MAX_HANDSHAKES,
            max_frame: DEFAULT_MAX,
            max_outbox: DEFAULT_MAX_OUTBOX.max(DEFAULT_MAX),
            net_ticktime: DEFAULT_TICKTIME,
            codec: Codec::Postcard,
            #[cfg(feature = "tls")]
            tls: None,
        })
    }

    /// From `FERROTP_NODE` (the name) and `FERROTP_COOKIE`; `None` when `FERROTP_NODE` is unset
    /// or empty (the node is not distributed).
    ///
    /// # Errors
    ///
    /// [`ConfigError`] for a malformed name, a missing or short cookie.
    pub fn from_env() -> Result<Option<Self>, ConfigError> {
        from_lookup(|key| std::env::var(key).ok())
    }

    /// How long a handshake may take in all (7 s unless set; Erlang's `net_setuptime`).
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// How long an incoming connection may take to send its first frame (1 s unless set).
    pub fn first_frame_timeout(mut self, timeout: Duration) -> Self {
        self.first_frame_timeout = timeout;
        self
    }

    /// How many incoming handshakes may run at once (1,024 unless set); a connection over
    /// that is closed at once.
    pub fn max_handshakes(mut self, max: usize) -> Self {
        // Past what a semaphore can count, it is as good as unbounded.
        self.max_handshakes = max.min(tokio::sync::Semaphore::MAX_PERMITS);
        self
    }

    /// How long a peer may stay silent before its connection is taken as lost
    /// ([`DEFAULT_TICKTIME`] unless set; Erlang's `net_ticktime`). A tick goes out four times
    /// per tick time when there is nothing else to send. A peer that has not read for a whole
    /// tick time (a write to it has been stuck that long) is taken as lost too. At least
    /// [`MIN_TICKTIME`]: a shorter one is taken as that (a connection cannot prove itself alive
    /// faster than a scheduler runs its heartbeat).
    pub fn net_ticktime(mut self, ticktime: Duration) -> Self {
        self.net_ticktime = ticktime.max(MIN_TICKTIME);
        self
    }

    /// Speaks mutual TLS with every peer (the `tls` feature): every node of the cluster must,
    /// with certificates signed by the same CA. The cookie handshake still runs, inside TLS.
    #[cfg(feature = "tls")]
    pub fn tls(mut self, tls: super::tls::TlsConfig) -> Self {
        self.tls = Some(tls);
        self
    }

    /// How this node encodes the values it sends ([`Codec::Postcard`] unless set).
    pub fn codec(mut self, codec: Codec) -> Self {
        self.codec = codec;
        self
    }

    /// The largest frame this node accepts from an authenticated peer (8 MiB unless set).
    ///
    /// # Errors
    ///
    /// [`ConfigError::FrameTooSmall`] below 1 KiB, the handshake's own cap.
    pub fn max_frame(mut self, max: usize) -> Result<Self, ConfigError> {
        if max < HANDSHAKE_MAX {
            return Err(ConfigError::FrameTooSmall(max));
        }
        self.max_frame = max;
        self.max_outbox = self.max_outbox.max(max);
        Ok(self)
    }

    /// How many bytes may wait to be sent to one peer (64 MiB unless set). They pile up when
    /// the peer does not read as fast as this node sends to it; a frame that would take them
    /// over this is not queued, and the connection is closed instead (with a `warn` event
    /// saying the peer is not reading fast enough): every link, monitor and call on it gets
    /// [`NoConnection`](crate::ExitReason::NoConnection), as for any lost connection. A
    /// connection holds at most about twice this: what waits, and the batch being written. At
    /// least [`max_frame`](DistConfig::max_frame), so that the largest frame fits: a smaller
    /// one is taken as that, now or when a larger `max_frame` is set.
    pub fn max_outbox(mut self, max: usize) -> Self {
        self.max_outbox = max.max(self.max_frame);
        self
    }
}

fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Option<DistConfig>, ConfigError> {
    let Some(name) = lookup("FERROTP_NODE").filter(|name| !name.is_empty()) else {
        return Ok(None);
    };
    let cookie = lookup("FERROTP_COOKIE").ok_or(ConfigError::NoCookie)?;
    DistConfig::new(&name, cookie).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_name_at_host_colon_port() {
        let n = NodeName::parse("leader@127.0.0.1:4370").unwrap();
        assert_eq!(
            (n.name(), n.addr(), n.port()),
            ("leader", "127.0.0.1:4370", 4370)
        );
        assert_eq!(n.as_str(), "leader@127.0.0.1:4370");
        let v6 = NodeName::parse("f@[::1]:0").unwrap();
        assert_eq!((v6.name(), v6.addr(), v6.port()), ("f", "[::1]:0", 0));
        let chosen = v6.with_port(41234);
        assert_eq!(
            (chosen.as_str(), chosen.addr(), chosen.port()),
            ("f@[::1]:41234", "[::1]:41234", 41234)
        );
        assert_eq!(chosen.with_port(7).as_str(), "f@[::1]:7");
        let host = NodeName::parse("a.b-c_1@db.example:9").unwrap();
        assert_eq!((host.name(), host.addr()), ("a.b-c_1", "db.example:9"));
    }

    #[test]
    fn anything_else_is_refused_with_the_reason() {
        for shape in [
            "leader",
            "leader@",
            "leader@host",
            "@host:1",
            "a@:1",
            "a@[::1:1",
            "a@[::1]",
            "a@b@c:1",
            "a@[host]:1",
        ] {
            assert!(
                matches!(
                    NodeName::parse(shape),
                    Err(NameError::Shape(_) | NameError::Characters(_))
                ),
                "{shape}"
            );
        }
        for port in ["a@h:", "a@h:65536", "a@h:-1", "a@h:x"] {
            assert_eq!(
                NodeName::parse(port),
                Err(NameError::Port(port.into())),
                "{port}"
            );
        }
        for characters in ["a b@h:1", "a/b@h:1", "ä@h:1", ""] {
            assert_eq!(
                NodeName::parse(characters),
                Err(NameError::Characters(characters.into())),
                "{characters:?}"
            );
        }
        let long = format!("{}@h:1", "a".repeat(MAX_NAME));
        assert!(matches!(
            NodeName::parse(&long),
            Err(NameError::Characters(_))
        ));
    }

    #[test]
    fn the_environment_configures_a_node_or_leaves_it_local() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |key: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == key)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert!(from_lookup(env(&[])).unwrap().is_none());
        assert!(from_lookup(env(&[("FERROTP_NODE", "")])).unwrap().is_none());
        let config = from_lookup(env(&[
            ("FERROTP_NODE", "leader@127.0.0.1:4370"),
            ("FERROTP_COOKIE", "a-long-enough-cookie"),
        ]))
        .unwrap()
        .expect("distributed");
        assert_eq!(config.name.as_str(), "leader@127.0.0.1:4370");
        // The cookie is kept, and never shown.
        assert_eq!(format!("{:?}", config.cookie), "Cookie(<redacted>)");
        assert!(!format!("{config:?}").contains("a-long-enough-cookie"));
        // The real environment of this test run names no node.
        if std::env::var_os("FERROTP_NODE").is_none() {
            assert!(DistConfig::from_env().unwrap().is_none());
        }
        assert_eq!(config.handshake_timeout, authenticate::DEFAULT_TIMEOUT);
        assert_eq!(
            from_lookup(env(&[("FERROTP_NODE", "leader@127.0.0.1:4370")])).err(),
            Some(ConfigError::NoCookie)
        );
        assert!(matches!(
            from_lookup(env(&[
                ("FERROTP_NODE", "leader@127.0.0.1:4370"),
                ("FERROTP_COOKIE", "short")
            ])),
            Err(ConfigError::Cookie(_))
        ));
        assert!(matches!(
            from_lookup(env(&[
                ("FERROTP_NODE", "leader"),
                ("FERROTP_COOKIE", "a-long-enough-cookie")
            ])),
            Err(ConfigError::Name(_))
        ));
    }

    #[test]
    fn limits_are_checked() {
        let config = DistConfig::new("a@127.0.0.1:0", "a-long-enough-cookie").unwrap();
        assert_eq!(config.max_frame, DEFAULT_MAX);
        assert_eq!(
            config.clone().max_frame(10).err(),
            Some(ConfigError::FrameTooSmall(10))
        );
        assert_eq!(
            config.clone().max_frame(HANDSHAKE_MAX).unwrap().max_frame,
            HANDSHAKE_MAX
        );
        assert_eq!(config.max_outbox, DEFAULT_MAX_OUTBOX);
        // Never below the largest frame, whichever is set first.
        assert_eq!(config.clone().max_outbox(0).max_outbox, DEFAULT_MAX);
        assert_eq!(config.clone().max_outbox(usize::MAX).max_outbox, usize::MAX);
        let small = config.clone().max_frame(HANDSHAKE_MAX).unwrap();
        assert_eq!(small.clone().max_outbox(0).max_outbox, HANDSHAKE_MAX);
        let raised = small.max_outbox(1 << 20).max_frame(2 << 20).unwrap();
        assert_eq!((raised.max_frame, raised.max_outbox), (2 << 20, 2 << 20));
        let patient = config.handshake_timeout(Duration::MAX);
        assert_eq!(patient.handshake_timeout, Duration::MAX);
    }
}
