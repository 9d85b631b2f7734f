//! TLS for check-db's PostgreSQL connections, with libpq's `sslmode` meanings: `disable` (no
//! TLS), `allow` (plain, TLS only when the server refuses plain; certificate not checked),
//! `prefer` (TLS when the server offers it, else plain; certificate not checked),
//! `require` (TLS or fail; the certificate is checked against a root certificate only when one
//! is configured, as libpq does), `verify-ca` (the chain must lead to the root certificate)
//! and `verify-full` (the chain, and the host name must match the certificate).
//!
//! The root certificate comes from `sslrootcert` (URL), else PGSSLROOTCERT, else
//! `~/.postgresql/root.crt`; `sslrootcert=system` means the operating system's store, and then
//! only `verify-full` (libpq 16's rule).
//!
//! A client certificate for servers that authenticate by certificate (pg_hba `cert`, or
//! `clientcert=verify-full`) comes from `sslcert` / `sslkey`, else PGSSLCERT / PGSSLKEY, else
//! `~/.postgresql/postgresql.crt` / `.key`. As in libpq, a certificate file that does not exist
//! means none is sent, and a key file that others may read is refused.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use postgres::config::SslMode;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
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
    /// `allow`: try without TLS first, and with it only when the server refuses that.
    pub plain_first: bool,
    /// For messages, when sslmode was chosen (URL or PGSSLMODE):
    /// `sslmode=verify-full, root certificate /path`.
    pub described: Option<String>,
}

/// Where the root certificate comes from.
enum Roots {
    File(PathBuf),
    System,
}

/// The URL's TLS parameters, each None when the URL does not set it.
#[derive(Debug, Default, Clone, Copy)]
pub struct Settings<'a> {
    pub sslmode: Option<&'a str>,
    pub sslrootcert: Option<&'a str>,
    pub sslcert: Option<&'a str>,
    pub sslkey: Option<&'a str>,
}

/// The URL's TLS settings, else PGSSLMODE / PGSSLROOTCERT / PGSSLCERT / PGSSLKEY, else libpq's
/// defaults. PostgreSQL never speaks TLS on a unix socket, so there (`tcp` false) only the
/// sslmode's spelling is checked, as libpq does.
pub fn resolve(settings: &Settings, home: Option<&Path>, tcp: bool) -> Result<Tls> {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let sslmode = settings.sslmode;
    let explicit_root = settings
        .sslrootcert
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
                plain_first: false,
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
            plain_first: false,
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
    let key_provider = provider.key_provider;
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier));
    let identity = client_identity(settings, home)
        .and_then(|found| found.map(|i| certified_key(i, key_provider)).transpose());
    let (config, client_text) = match identity {
        Ok(Some((key, cert_path))) => {
            let text = format!(", client certificate {}", cert_path.display());
            (builder.with_client_cert_resolver(Arc::new(key)), text)
        }
        Ok(None) => (builder.with_no_client_auth(), String::new()),
        // libpq loads the certificate as TLS starts; with allow / prefer a failure there
        // ends the TLS attempt, and the connection goes on without TLS.
        Err(err) if matches!(mode_text, "allow" | "prefer") => {
            return Ok(Tls {
                mode: SslMode::Disable,
                connector: None,
                plain_first: false,
                described: Some(format!(
                    "sslmode={mode_text}, without TLS: {}",
                    crate::report::one_line(&format!("{err:#}"))
                )),
            });
        }
        Err(err) => return Err(err),
    };
    Ok(Tls {
        mode,
        connector: Some(MakeRustlsConnect::new(config)),
        plain_first: mode_text == "allow",
        described: (chosen.is_some() || !client_text.is_empty())
            .then(|| format!("sslmode={mode_text}{root_text}{client_text}")),
    })
}

/// A client certificate chain with its private key, and where they were read from.
struct Identity {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    cert_path: PathBuf,
    key_path: PathBuf,
}

/// The client certificate to present, as libpq finds one: none when the certificate file does
/// not exist; an error when it does and its key is missing, unreadable, or open to others.
fn client_identity(settings: &Settings, home: Option<&Path>) -> Result<Option<Identity>> {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let pick = |given: Option<&str>, var: &str, default: &str| {
        given
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| env(var).map(PathBuf::from))
            .or_else(|| home.map(|h| h.join(".postgresql").join(default)))
    };
    let Some(cert_path) = pick(settings.sslcert, "PGSSLCERT", "postgresql.crt") else {
        return Ok(None);
    };
    if !cert_path.exists() {
        return Ok(None);
    }
    let shown = cert_path.display();
    let chain = CertificateDer::pem_file_iter(&cert_path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| anyhow!("sslcert {shown}: cannot read a PEM certificate: {e}"))?;
    if chain.is_empty() {
        bail!("sslcert {shown}: no certificate in the file");
    }
    let key_path = pick(settings.sslkey, "PGSSLKEY", "postgresql.key")
        .ok_or_else(|| anyhow!("sslcert {shown}: certificate present, but no private key file"))?;
    let key_shown = key_path.display();
    let meta = std::fs::metadata(&key_path)
        .map_err(|e| anyhow!("certificate present, but not private key file {key_shown}: {e}"))?;
    if !meta.is_file() {
        bail!("private key file {key_shown} is not a regular file");
    }
    key_permissions_are_private(&key_path, &meta)?;
    let key = PrivateKeyDer::from_pem_file(&key_path).map_err(|e| {
        anyhow!("sslkey {key_shown}: cannot read a PEM private key (encrypted keys are not supported): {e}")
    })?;
    Ok(Some(Identity {
        chain,
        key,
        cert_path,
        key_path,
    }))
}

/// The certificate with its key, ready to sign. The key must belong to the certificate. That
/// is checked here with x509-cert rather than by rustls, which reads X.509 v3 only: OpenSSL
/// (`openssl x509 -req` without extensions) makes v1 client certificates, which PostgreSQL and
/// libpq accept.
fn certified_key(
    identity: Identity,
    keys: &dyn rustls::crypto::KeyProvider,
) -> Result<(OneClientCertificate, PathBuf)> {
    use x509_cert::der::{Decode, Encode};
    let shown = identity.key_path.display();
    let signing = keys
        .load_private_key(identity.key)
        .map_err(|e| anyhow!("sslkey {shown}: {e}"))?;
    let certificate_key = x509_cert::Certificate::from_der(identity.chain[0].as_ref())
        .ok()
        .and_then(|c| c.tbs_certificate.subject_public_key_info.to_der().ok());
    if let (Some(ours), Some(theirs)) = (signing.public_key(), certificate_key)
        && ours.as_ref() != theirs.as_slice()
    {
        bail!(
            "sslkey {shown} is not the private key of the certificate in sslcert {}",
            identity.cert_path.display()
        );
    }
    let key = rustls::sign::CertifiedKey::new(identity.chain, signing);
    Ok((OneClientCertificate(Arc::new(key)), identity.cert_path))
}

/// Presents the one client certificate to every server that asks for one.
#[derive(Debug)]
struct OneClientCertificate(Arc<rustls::sign::CertifiedKey>);

impl rustls::client::ResolvesClientCert for OneClientCertificate {
    fn resolve(
        &self,
        _root_hints: &[&[u8]],
        _schemes: &[rustls::SignatureScheme],
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(self.0.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// libpq's rule: a key may be read by its owner only (0600 or less), or, when root owns it (a
/// system-managed key), also by its group (0640 or less). Who runs the tool does not matter.
#[cfg(unix)]
fn key_permissions_are_private(path: &Path, meta: &std::fs::Metadata) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let others = if meta.uid() == 0 { 0o037 } else { 0o077 };
    if meta.mode() & others != 0 {
        bail!(
            "private key file {} has group or world access; file must have permissions u=rw (0600) or less if owned by the current user, or permissions u=rw,g=r (0640) or less if owned by root",
            path.display()
        );
    }
    Ok(())
}

#[cfg(not(unix))]
fn key_permissions_are_private(_: &Path, _: &std::fs::Metadata) -> Result<()> {
    Ok(())
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
