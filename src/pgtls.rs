//! TLS for check-db's PostgreSQL connections, with libpq's `sslmode` meanings: `disable` (no
//! TLS), `allow` / `prefer` (TLS when the server offers it, certificate not checked),
//! `require` (TLS or fail; the certificate is checked against a root certificate only when one
//! is configured, as libpq does), `verify-ca` (the chain must lead to the root certificate)
//! and `verify-full` (the chain, and the host name must match the certificate).
//!
//! The root certificate comes from `sslrootcert` (URL), else PGSSLROOTCERT, else
//! `~/.postgresql/root.crt`; `sslrootcert=system` means the operating system's store, and then
//! only `verify-full` (libpq 16's rule).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use postgres::config::SslMode;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_postgres_rustls::MakeRustlsConnect;

/// What the connection asks of the server's certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Encrypt only: any certificate (libpq's `prefer`, and `require` without a root).
    Nothing,
    /// The chain must lead to the root certificate; the host name is not compared.
    Chain,
    /// The chain, and the host name must be one the certificate names.
    ChainAndHost,
}

/// The connection's TLS settings, resolved from the URL and the environment.
pub struct Tls {
    pub mode: SslMode,
    /// None when no TLS is attempted.
    pub connector: Option<MakeRustlsConnect>,
    /// For messages, when sslmode was chosen (URL or PGSSLMODE):
    /// `sslmode=verify-full, root certificate /path`.
    pub described: Option<String>,
}

/// Where the root certificate comes from.
enum Roots {
    File(PathBuf),
    System,
}

/// `sslmode` and `sslrootcert` (the URL's values, else PGSSLMODE / PGSSLROOTCERT, else libpq's
/// defaults). PostgreSQL never speaks TLS on a unix socket, so there (`tcp` false) only the
/// sslmode's spelling is checked, as libpq does.
pub fn resolve(
    sslmode: Option<&str>,
    sslrootcert: Option<&str>,
    home: Option<&Path>,
    tcp: bool,
) -> Result<Tls> {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let explicit_root = sslrootcert
        .filter(|r| !r.is_empty())
        .map(str::to_string)
        .or_else(|| env("PGSSLROOTCERT"));
    let default_root = home.map(|h| h.join(".postgresql").join("root.crt"));
    let roots = match explicit_root.as_deref() {
        Some("system") => Some(Roots::System),
        Some(path) => Some(Roots::File(PathBuf::from(path))),
        None => default_root
            .clone()
            .filter(|p| p.is_file())
            .map(Roots::File),
    };
    let system = matches!(roots, Some(Roots::System));
    let chosen = sslmode.map(str::to_string).or_else(|| env("PGSSLMODE"));
    // libpq 16: with the system's roots, any public CA vouches for a name its holder controls,
    // so only the name check makes them mean anything. verify-full is then the default, and a
    // weaker mode an error.
    let mode_text = match chosen.as_deref() {
        Some(mode) if system && mode != "verify-full" => {
            bail!("sslmode={mode} may not be used with sslrootcert=system; use sslmode=verify-full")
        }
        Some(mode) => mode,
        None if system => "verify-full",
        None => "prefer",
    };
    // libpq uses a root file for `require` only when it exists.
    let root_exists = match &roots {
        Some(Roots::File(path)) => path.is_file(),
        Some(Roots::System) => true,
        None => false,
    };
    let (mode, check) = match mode_text {
        "disable" => {
            return Ok(Tls {
                mode: SslMode::Disable,
                connector: None,
                described: Some("sslmode=disable".into()),
            });
        }
        "allow" | "prefer" => (SslMode::Prefer, Check::Nothing),
        // libpq: "if a root CA file exists, sslmode=require behaves like verify-ca".
        "require" if root_exists => (SslMode::Require, Check::Chain),
        "require" => (SslMode::Require, Check::Nothing),
        "verify-ca" => (SslMode::Require, Check::Chain),
        "verify-full" => (SslMode::Require, Check::ChainAndHost),
        other => bail!(
            "sslmode={other} is not one of disable, allow, prefer, require, verify-ca, verify-full"
        ),
    };
    if !tcp {
        return Ok(Tls {
            mode: SslMode::Disable,
            connector: None,
            described: None,
        });
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let (chain, root_text) = match check {
        Check::Nothing => (None, String::new()),
        Check::Chain | Check::ChainAndHost => {
            let Some(roots) = roots else {
                let default = default_root.map_or_else(
                    || "~/.postgresql/root.crt".to_string(),
                    |p| p.display().to_string(),
                );
                bail!(
                    "sslmode={mode_text} needs a root certificate: set sslrootcert=<file> in the URL (or PGSSLROOTCERT), put it at {default}, or use sslrootcert=system"
                );
            };
            let (store, certs, text) = root_store(&roots)?;
            let webpki =
                WebPkiServerVerifier::builder_with_provider(Arc::new(store), provider.clone())
                    .build()
                    .map_err(|e| anyhow!("sslrootcert {text}: {e}"))?;
            let chain = Chain {
                webpki,
                roots: certs,
                names: check == Check::ChainAndHost,
            };
            (Some(chain), format!(", root certificate {text}"))
        }
    };
    let verifier = Verifier {
        algorithms: provider.signature_verification_algorithms,
        chain,
    };
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    Ok(Tls {
        mode,
        connector: Some(MakeRustlsConnect::new(config)),
        described: chosen
            .is_some()
            .then(|| format!("sslmode={mode_text}{root_text}")),
    })
}

/// The trust anchors, the root file's own certificates (a self-signed server certificate may
/// be among them) and how to name the source in messages.
fn root_store(roots: &Roots) -> Result<(RootCertStore, Vec<CertificateDer<'static>>, String)> {
    let mut store = RootCertStore::empty();
    match roots {
        Roots::File(path) => {
            let text = path.display().to_string();
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .map_err(|e| anyhow!("sslrootcert {text}: cannot read a PEM certificate: {e}"))?;
            let (added, _) = store.add_parsable_certificates(certs.iter().cloned());
            if added == 0 {
                bail!("sslrootcert {text}: no usable certificate in the file");
            }
            Ok((store, certs, text))
        }
        Roots::System => {
            let found = rustls_native_certs::load_native_certs();
            let (added, _) = store.add_parsable_certificates(found.certs);
            if added == 0 {
                bail!(
                    "sslrootcert=system: the operating system's certificate store is empty or unreadable"
                );
            }
            Ok((store, Vec::new(), "system".to_string()))
        }
    }
}

/// The server certificate check of every sslmode that uses TLS. The handshake signatures are
/// always checked, so the server holds the certificate's key; without a `chain` (`prefer`, and
/// `require` without a root) that is all, as in libpq: encrypted, the peer not authenticated.
#[derive(Debug)]
struct Verifier {
    algorithms: WebPkiSupportedAlgorithms,
    chain: Option<Chain>,
}

/// `verify-ca` / `verify-full` (and `require` with a root): the chain must lead to a root
/// certificate, and with `names` the certificate must name the host. A server certificate that
/// is itself in the root file and self-signed (as PostgreSQL's documentation makes one) is
/// trusted as it is, as OpenSSL trusts it for libpq, though WebPKI refuses a CA certificate as
/// a server's.
#[derive(Debug)]
struct Chain {
    webpki: Arc<WebPkiServerVerifier>,
    roots: Vec<CertificateDer<'static>>,
    names: bool,
}

/// Issuer and subject are the same name: a certificate that is its own root. A server
/// certificate some CA issued is not one, even when it is in the root file (OpenSSL, and so
/// libpq, would still look for that CA).
fn self_signed(cert: &CertificateDer<'_>) -> bool {
    use x509_cert::der::Decode;
    x509_cert::Certificate::from_der(cert.as_ref())
        .is_ok_and(|c| c.tbs_certificate.issuer == c.tbs_certificate.subject)
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        if chain
            .roots
            .iter()
            .any(|root| root.as_ref() == end_entity.as_ref())
            && self_signed(end_entity)
        {
            if chain.names {
                let parsed = rustls::server::ParsedCertificate::try_from(end_entity)?;
                rustls::client::verify_server_name(&parsed, server_name)?;
            }
            return Ok(ServerCertVerified::assertion());
        }
        match chain.webpki.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !chain.names => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
