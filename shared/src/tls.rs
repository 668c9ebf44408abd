//! The one TLS configuration of a process, shared by the AWS SDK clients (DynamoDB, Secrets
//! Manager) and the outbound client (`delivery::http_client`).
//!
//! Before, each built its own trust store from the system CA bundle: the SDK's default client
//! when it was constructed (about 6 ms of a function's init) and reqwest's platform verifier
//! when the outbound client was built (about 5 ms more). Here the roots are chosen once
//! ([`TrustRoots`]), turned into one `rustls::ClientConfig` once per process
//! ([`client_config`]), and both clients use that configuration: reqwest through
//! `tls_backend_preconfigured`, the SDK through [`sdk_http_client`], a small HTTP client built
//! from hyper-util and hyper-rustls around the same configuration.
//!
//! The default roots are compiled in (Mozilla's set, from `webpki-roots`): nothing is read or
//! parsed at start. `HANDOVER_TLS_ROOTS=system` trusts the system bundle instead (read once,
//! honouring `SSL_CERT_FILE` and `SSL_CERT_DIR`), for a private CA or the OS's trust updates;
//! docs/deploy.md says what each choice means.

use std::error::Error as StdError;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::retry::ErrorKind;

/// The environment variable that chooses the trust roots.
pub const ROOTS_VARIABLE: &str = "HANDOVER_TLS_ROOTS";

/// Where the certificates a TLS server must chain to come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrustRoots {
    /// Mozilla's root set compiled into the binary (`webpki-roots`): no file read and nothing
    /// parsed at start; updated with a release of handover, not with the OS image.
    Bundled,
    /// The system's CA bundle (or `SSL_CERT_FILE` / `SSL_CERT_DIR`), read and parsed once per
    /// process: a private CA installed there is trusted.
    System,
}

/// A value of [`ROOTS_VARIABLE`] that names no known set of roots.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{ROOTS_VARIABLE} must be `bundled` or `system`, not `{0}`")]
pub struct UnknownRoots(pub String);

impl TrustRoots {
    /// Reads a value of [`ROOTS_VARIABLE`]; unset or empty is [`TrustRoots::Bundled`].
    pub fn parse(value: Option<&str>) -> Result<Self, UnknownRoots> {
        match value.map(str::trim) {
            None | Some("") | Some("bundled") => Ok(TrustRoots::Bundled),
            Some("system") => Ok(TrustRoots::System),
            Some(other) => Err(UnknownRoots(other.to_owned())),
        }
    }

    /// The choice of this process's environment.
    pub fn from_env() -> Result<Self, UnknownRoots> {
        Self::parse(std::env::var(ROOTS_VARIABLE).ok().as_deref())
    }

    /// The root store. `System` reads and parses the bundle on every call: call it once
    /// ([`client_config`] does).
    pub fn store(self) -> rustls::RootCertStore {
        match self {
            TrustRoots::Bundled => rustls::RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            },
            TrustRoots::System => {
                let loaded = rustls_native_certs::load_native_certs();
                if !loaded.errors.is_empty() {
                    tracing::warn!(
                        errors = loaded.errors.len(),
                        "some system CA certificates could not be read"
                    );
                }
                let mut store = rustls::RootCertStore::empty();
                let (_, invalid) = store.add_parsable_certificates(loaded.certs);
                if invalid > 0 {
                    tracing::warn!(invalid, "some system CA certificates could not be parsed");
                }
                if store.is_empty() {
                    tracing::warn!("no system CA certificate found: every TLS connection will fail");
                }
                store
            }
        }
    }

    /// A client configuration trusting these roots: the default protocol versions and cipher
    /// suites of rustls with the aws-lc-rs provider (the one crypto provider linked), no
    /// client certificate.
    pub fn client_config(self) -> rustls::ClientConfig {
        rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("the aws-lc-rs provider supports the default protocol versions")
            .with_root_certificates(self.store())
            .with_no_client_auth()
    }
}

/// The process's TLS configuration, built on first use from [`TrustRoots::from_env`]; every
/// caller gets the same one, so the roots are read at most once.
///
/// # Panics
/// When [`ROOTS_VARIABLE`] holds an unknown value: a function must not start trusting
/// something else than what its operator chose.
pub fn client_config() -> Arc<rustls::ClientConfig> {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let roots = TrustRoots::from_env().unwrap_or_else(|e| panic!("{e}"));
            Arc::new(roots.client_config())
        })
        .clone()
}

/// The AWS SDK's HTTP client over [`client_config`]: HTTP/1.1 through hyper-util's pooled
/// client and hyper-rustls (plain HTTP too, for a local emulator's endpoint). The SDK's connect
/// timeout and read timeout (time to the response head) are applied as its own client does;
/// attempt and operation timeouts and retries stay the SDK's. One client serves every SDK
/// client of the process, so they share one connection pool.
pub fn sdk_http_client() -> SharedHttpClient {
    SharedHttpClient::new(SdkHttpClient::default())
}

/// The connect and read timeouts a connector was built for.
type Timeouts = (Option<Duration>, Option<Duration>);

#[derive(Debug, Default)]
struct SdkHttpClient {
    /// One connector per pair of timeouts asked for (in practice one).
    connectors: Mutex<Vec<(Timeouts, SharedHttpConnector)>>,
}

impl HttpClient for SdkHttpClient {
    fn http_connector(&self, settings: &HttpConnectorSettings, _: &RuntimeComponents) -> SharedHttpConnector {
        let key: Timeouts = (settings.connect_timeout(), settings.read_timeout());
        let mut connectors = self.connectors.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, c)) = connectors.iter().find(|(k, _)| *k == key) {
            return c.clone();
        }
        let connector = SharedHttpConnector::new(SdkConnector::new(client_config(), key.0, key.1));
        connectors.push((key, connector.clone()));
        connector
    }
}

type Pooled = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    SdkBody,
>;

#[derive(Debug, Clone)]
struct SdkConnector {
    client: Pooled,
    read_timeout: Option<Duration>,
}

impl SdkConnector {
    fn new(tls: Arc<rustls::ClientConfig>, connect_timeout: Option<Duration>, read_timeout: Option<Duration>) -> Self {
        let mut tcp = hyper_util::client::legacy::connect::HttpConnector::new();
        tcp.enforce_http(false);
        tcp.set_nodelay(true);
        tcp.set_connect_timeout(connect_timeout);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config((*tls).clone())
            .https_or_http()
            .enable_http1()
            .wrap_connector(tcp);
        let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .pool_timer(hyper_util::rt::TokioTimer::new())
            .build(https);
        SdkConnector { client, read_timeout }
    }
}

impl HttpConnector for SdkConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let request = match request.try_into_http1x() {
            Ok(request) => request,
            Err(e) => return HttpConnectorFuture::ready(Err(ConnectorError::user(e.into()))),
        };
        let response = self.client.request(request);
        let read_timeout = self.read_timeout;
        HttpConnectorFuture::new(async move {
            let response = match read_timeout {
                Some(limit) => match tokio::time::timeout(limit, response).await {
                    Ok(response) => response,
                    Err(elapsed) => return Err(ConnectorError::timeout(elapsed.into())),
                },
                None => response.await,
            };
            let response = response.map_err(classify)?.map(SdkBody::from_body_1_x);
            HttpResponse::try_from(response).map_err(|e| ConnectorError::other(e.into(), None))
        })
    }
}

/// Sorts a failed request the way the SDK's own client does, so its retry rules see the same
/// kinds: timeouts, I/O (connect failures, closed or reset connections) and a response cut
/// short are retried; anything else is not.
fn classify(e: hyper_util::client::legacy::Error) -> ConnectorError {
    let timed_out = |e: &(dyn StdError + 'static)| {
        source::<std::io::Error>(e).is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
    };
    if let Some(h) = source::<hyper::Error>(&e) {
        if h.is_timeout() || timed_out(&e) {
            return ConnectorError::timeout(e.into());
        }
        if h.is_user() {
            return ConnectorError::user(e.into());
        }
        if h.is_incomplete_message() {
            return ConnectorError::other(e.into(), Some(ErrorKind::TransientError));
        }
        if h.is_closed() || h.is_canceled() || source::<std::io::Error>(&e).is_some() {
            return ConnectorError::io(e.into());
        }
        return ConnectorError::other(e.into(), None);
    }
    if timed_out(&e) {
        return ConnectorError::timeout(e.into());
    }
    if e.is_connect() || source::<std::io::Error>(&e).is_some() {
        return ConnectorError::io(e.into());
    }
    ConnectorError::other(e.into(), None)
}

fn source<'a, E: StdError + 'static>(e: &'a (dyn StdError + 'static)) -> Option<&'a E> {
    let mut next = Some(e);
    while let Some(e) = next {
        if let Some(found) = e.downcast_ref::<E>() {
            return Some(found);
        }
        next = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_roots_setting_defaults_to_the_bundled_roots_and_refuses_unknown_values() {
        assert_eq!(TrustRoots::parse(None), Ok(TrustRoots::Bundled));
        assert_eq!(TrustRoots::parse(Some("")), Ok(TrustRoots::Bundled));
        assert_eq!(TrustRoots::parse(Some("bundled")), Ok(TrustRoots::Bundled));
        assert_eq!(TrustRoots::parse(Some(" system ")), Ok(TrustRoots::System));
        let refused = TrustRoots::parse(Some("none")).unwrap_err();
        assert_eq!(
            refused.to_string(),
            "HANDOVER_TLS_ROOTS must be `bundled` or `system`, not `none`"
        );
    }

    #[test]
    fn the_bundled_roots_hold_the_public_web_roots_without_reading_a_file() {
        let store = TrustRoots::Bundled.store();
        assert_eq!(store.len(), webpki_roots::TLS_SERVER_ROOTS.len());
        assert!(store.len() > 100, "{} roots", store.len());
    }

    #[test]
    fn every_caller_shares_one_configuration() {
        assert!(Arc::ptr_eq(&client_config(), &client_config()));
    }

    /// A connect failure reaches the SDK as an I/O error, which its standard retry retries.
    #[tokio::test]
    async fn a_refused_connection_is_an_io_error_for_the_sdk() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        drop(listener);
        let connector = SdkConnector::new(client_config(), Some(Duration::from_secs(1)), None);
        let request = http_request(&format!("http://{address}/"));
        let e = connector.call(request).await.unwrap_err();
        assert!(e.is_io(), "{e:?}");
    }

    /// A server that accepts and never answers is a timeout once the read timeout passes.
    #[tokio::test]
    async fn a_silent_server_is_a_timeout_for_the_sdk() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let _server = tokio::spawn(async move {
            let mut held = Vec::new();
            loop {
                let (socket, _) = listener.accept().await.unwrap();
                held.push(socket);
            }
        });
        let connector = SdkConnector::new(
            client_config(),
            Some(Duration::from_secs(1)),
            Some(Duration::from_millis(200)),
        );
        let request = http_request(&format!("http://{address}/"));
        let e = connector.call(request).await.unwrap_err();
        assert!(e.is_timeout(), "{e:?}");
    }

    /// An answer over plain HTTP (a local emulator's endpoint) comes back whole.
    #[tokio::test]
    async fn an_answer_over_plain_http_comes_back() {
        let server = wiremock::MockServer::start().await;
        wiremock::Mock::given(wiremock::matchers::method("POST"))
            .respond_with(wiremock::ResponseTemplate::new(200).set_body_string("{\"ok\":true}"))
            .mount(&server)
            .await;
        let connector = SdkConnector::new(
            client_config(),
            Some(Duration::from_secs(1)),
            Some(Duration::from_secs(2)),
        );
        let request = http_request(&format!("{}/", server.uri()));
        let response = connector.call(request).await.unwrap();
        assert_eq!(response.status().as_u16(), 200);
        assert_eq!(response.headers().get("content-length"), Some("11"));
    }

    /// A TLS server for `localhost` with a certificate from a test CA (`shared/testdata/tls`,
    /// made with openssl for these tests, valid until 2126), answering one fixed response to
    /// each connection; returns its port.
    async fn tls_server() -> u16 {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let chain = CertificateDer::pem_slice_iter(include_bytes!("../testdata/tls/localhost.pem"))
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_slice(include_bytes!("../testdata/tls/localhost.key")).unwrap();
        let config =
            rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(chain, key)
                .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            loop {
                let (socket, _) = listener.accept().await.unwrap();
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(socket).await else {
                        return;
                    };
                    let mut buf = [0u8; 4096];
                    let _ = tls.read(&mut buf).await;
                    let _ = tls
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
                        .await;
                    let _ = tls.shutdown().await;
                });
            }
        });
        port
    }

    fn test_ca_config() -> Arc<rustls::ClientConfig> {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(include_bytes!("../testdata/tls/ca.pem")) {
            roots.add(cert.unwrap()).unwrap();
        }
        Arc::new(
            rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots)
                .with_no_client_auth(),
        )
    }

    /// The SDK's client speaks TLS with the configuration it is given: a server whose CA the
    /// configuration trusts answers over HTTPS.
    #[tokio::test]
    async fn the_sdk_client_speaks_tls_with_the_configuration_it_is_given() {
        let port = tls_server().await;
        let connector = SdkConnector::new(
            test_ca_config(),
            Some(Duration::from_secs(2)),
            Some(Duration::from_secs(5)),
        );
        let response = connector
            .call(http_request(&format!("https://localhost:{port}/")))
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200);
    }

    /// The compiled-in roots do not trust a private CA: the same server is refused (and the
    /// SDK sees a connection failure, as with its own client).
    #[tokio::test]
    async fn the_bundled_roots_refuse_a_server_of_a_private_ca() {
        let port = tls_server().await;
        let bundled = Arc::new(TrustRoots::Bundled.client_config());
        let connector = SdkConnector::new(bundled, Some(Duration::from_secs(2)), Some(Duration::from_secs(5)));
        let e = connector
            .call(http_request(&format!("https://localhost:{port}/")))
            .await
            .unwrap_err();
        assert!(e.is_io(), "{e:?}");
        assert!(format!("{e:?}").contains("UnknownIssuer"), "{e:?}");
    }

    /// The outbound client uses the configuration it is handed in the same way (reqwest with a
    /// preconfigured rustls configuration): trusted, the server answers; with the bundled roots
    /// it is refused.
    #[tokio::test]
    async fn the_outbound_client_takes_the_preconfigured_configuration() {
        let port = tls_server().await;
        let client = |tls: rustls::ClientConfig| {
            reqwest::Client::builder()
                .tls_backend_preconfigured(tls)
                .build()
                .unwrap()
        };
        let url = format!("https://localhost:{port}/");
        let trusted = client((*test_ca_config()).clone()).get(&url).send().await.unwrap();
        assert_eq!(trusted.status().as_u16(), 200);
        let refused = client(TrustRoots::Bundled.client_config()).get(&url).send().await;
        assert!(refused.is_err());
    }

    fn http_request(uri: &str) -> HttpRequest {
        let mut request = HttpRequest::new(SdkBody::from("{}"));
        request.set_method("POST").unwrap();
        request.set_uri(uri).unwrap();
        request
    }
}
