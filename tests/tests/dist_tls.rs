//! Mutual TLS between nodes (the `tls` feature: `cargo test -p ferrotp-tests --features tls`):
//! certificates made here with rcgen, signed by one test CA.
#![cfg(feature = "tls")]

use ferrotp::{
    CallError,
    dist::{ConnectError, DistConfig, LocalNode, TlsConfig},
    prelude::*,
};
use rcgen::{BasicConstraints, Certificate, CertificateParams, IsCa, KeyPair};

const COOKIE: &str = "tls test cookie, 16+ bytes";

struct Ca {
    cert: Certificate,
    key: KeyPair,
}

fn ca() -> Ca {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    Ca { cert, key }
}

/// A node's TLS configuration: a certificate for 127.0.0.1 signed by `ca`, trusting `trusted`.
fn tls(ca: &Ca, trusted: &Ca) -> TlsConfig {
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&key, &ca.cert, &ca.key)
        .unwrap();
    TlsConfig::from_pem(
        trusted.cert.pem().as_bytes(),
        cert.pem().as_bytes(),
        key.serialize_pem().as_bytes(),
    )
    .unwrap()
}

async fn node(name: &str, tls: TlsConfig) -> LocalNode {
    let config = DistConfig::new(&format!("{name}@127.0.0.1:0"), COOKIE)
        .unwrap()
        .tls(tls);
    LocalNode::start(config).await.unwrap()
}

struct Echo;

#[gen_server]
impl Echo {
    async fn init(_: ()) -> Self {
        Echo
    }

    #[install("echo")]
    async fn echo(&mut self, text: String) -> String {
        text
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_with_certificates_of_one_ca_talk_over_tls() {
    let ca = ca();
    let (a, b) = (
        node("tls-a1", tls(&ca, &ca)).await,
        node("tls-b1", tls(&ca, &ca)).await,
    );
    let echo = b.scope(async { Echo::start(()).await.unwrap() }).await;
    let reply = a
        .scope(async move {
            let remote = ServerRef::<Echo>::from_pid(echo.pid()).unwrap();
            remote.echo("over tls".to_owned()).await
        })
        .await;
    assert_eq!(reply, Ok("over tls".to_owned()));
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_certificate_another_ca_signed_is_refused() {
    let (ca, stranger_ca) = (ca(), ca());
    let a = node("tls-a2", tls(&ca, &ca)).await;
    // Trusts our CA, but its own certificate is a stranger's: both directions fail.
    let b = node("tls-b2", tls(&stranger_ca, &ca)).await;
    assert!(matches!(
        a.connect(b.name()).await,
        Err(ConnectError::Io(_) | ConnectError::Malformed(_))
    ));
    assert!(b.connect(a.name()).await.is_err());
    let echo = b.scope(async { Echo::start(()).await.unwrap() }).await;
    let refused = a
        .scope(async move {
            let remote = ServerRef::<Echo>::from_pid(echo.pid()).unwrap();
            remote.echo("no".to_owned()).await
        })
        .await;
    assert_eq!(refused, Err(CallError::NoConnection(echo.pid())));
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_tcp_node_cannot_talk_to_a_tls_one() {
    let ca = ca();
    let a = node("tls-a3", tls(&ca, &ca)).await;
    let plain = LocalNode::start(DistConfig::new("tls-plain3@127.0.0.1:0", COOKIE).unwrap())
        .await
        .unwrap();
    assert!(plain.connect(a.name()).await.is_err());
    assert!(a.connect(plain.name()).await.is_err());
    a.stop().await;
    plain.stop().await;
}
