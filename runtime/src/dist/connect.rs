//! Opening a connection to another node: the transport's connect and the dialer's handshake under
//! the one deadline, and a log line naming the node and the reason when it fails, so that a
//! refusal is seen on both sides (the acceptor logs its own in `listen`).

use std::io;

use super::{
    authenticate::{self, ConnectError, Handshaken},
    config::{DistConfig, NodeName},
    handshake::Identity,
    transport::{Connection, Transport},
};

/// Connects to the node `to` as the node `me` configured by `config`, `last_conn` being the last
/// connection id this node had with it (0 for none).
pub(crate) async fn connect(
    transport: &dyn Transport,
    config: &DistConfig,
    me: Identity,
    to: &NodeName,
    last_conn: u64,
) -> Result<(Handshaken, Connection), ConnectError> {
    let outcome = async {
        let mut connection = authenticate::within(config.handshake_timeout, async {
            transport.connect(to.addr()).await.map_err(unreachable)
        })
        .await?;
        let handshaken = authenticate::dial(
            &mut *connection.io,
            me,
            to.as_str(),
            config.cookie.clone(),
            last_conn,
            config.handshake_timeout,
        )
        .await?;
        Ok((handshaken, connection))
    }
    .await;
    if let Err(error) = &outcome {
        tracing::warn!(node = to.as_str(), %error, "could not connect to a node");
    }
    outcome
}

fn unreachable(error: io::Error) -> ConnectError {
    ConnectError::Io(format!("cannot reach it: {error}"))
}

#[cfg(test)]
mod tests {
    use std::{
        io::Write,
        sync::{Arc, Mutex},
    };

    use super::*;
    use crate::dist::{
        handshake::Status,
        listen::serve,
        transport::{Listener, Tcp},
    };

    /// Every log line, for the test to read.
    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl Write for Lines {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            crate::mailbox::lock(&self.0).extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Lines {
        fn text(&self) -> String {
            String::from_utf8_lossy(&crate::mailbox::lock(&self.0)).into_owned()
        }
    }

    #[test]
    fn a_refusal_is_logged_on_both_sides_and_typed_for_the_dialer() {
        let lines = Lines::default();
        let writer = lines.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        // One thread, so that this test's subscriber sees both sides and no other test's lines.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let refused = tracing::subscriber::with_default(subscriber, || {
            runtime.block_on(async {
                let listener = Tcp.listen("127.0.0.1:0").await.expect("bind");
                let port = listener
                    .local_addr()
                    .expect("address")
                    .rsplit_once(':')
                    .map(|(_, p)| p.to_owned())
                    .expect("a port");
                let acceptor =
                    DistConfig::new(&format!("b@127.0.0.1:{port}"), "the-acceptor's-cookie")
                        .expect("valid");
                let me = Identity::new(acceptor.name.as_str(), 1).expect("valid");
                let server = tokio::spawn(serve(
                    listener as Box<dyn Listener>,
                    me,
                    Arc::new(acceptor.clone()),
                    Arc::new(|_| (Status::Ok, 1)),
                    Arc::new(|_, _| {}),
                ));
                let dialer =
                    DistConfig::new("a@127.0.0.1:1", "the-dialer's-own-cookie").expect("valid");
                let me = Identity::new(dialer.name.as_str(), 1).expect("valid");
                let refused = connect(&Tcp, &dialer, me, &acceptor.name, 0).await.err();
                // The acceptor logs once its task has sent the refusal: wait for its line.
                for _ in 0..1_000 {
                    if lines.text().contains("refused a connection") {
                        break;
                    }
                    tokio::task::yield_now().await;
                }
                server.abort();
                refused
            })
        });
        assert_eq!(
            refused,
            Some(ConnectError::RefusedByPeer(
                crate::dist::handshake::Refusal::BadCookie
            ))
        );
        let text = lines.text();
        let dialer_line = text
            .lines()
            .find(|l| l.contains("could not connect to a node"))
            .expect(&text);
        assert!(
            dialer_line.contains("WARN") && dialer_line.contains("node=\"b@127.0.0.1:"),
            "{dialer_line}"
        );
        assert!(dialer_line.contains("the cookies differ"), "{dialer_line}");
        let acceptor_line = text
            .lines()
            .find(|l| l.contains("refused a connection"))
            .expect(&text);
        assert!(
            acceptor_line.contains("WARN") && acceptor_line.contains("peer=127.0.0.1:"),
            "{acceptor_line}"
        );
        assert!(
            acceptor_line.contains("the cookies differ"),
            "{acceptor_line}"
        );
    }

    #[tokio::test]
    async fn an_unreachable_node_is_a_typed_error() {
        // A port that was just free: nothing listens there.
        let free = Tcp
            .listen("127.0.0.1:0")
            .await
            .expect("bind")
            .local_addr()
            .expect("address");
        let name = NodeName::parse(&format!("gone@{free}")).expect("valid");
        let config = DistConfig::new("a@127.0.0.1:1", "a-long-enough-cookie").expect("valid");
        let me = Identity::new("a@127.0.0.1:1", 1).expect("valid");
        let error = connect(&Tcp, &config, me, &name, 0).await.err();
        assert!(
            matches!(&error, Some(ConnectError::Io(why)) if why.starts_with("cannot reach it")),
            "{error:?}"
        );
    }
}
