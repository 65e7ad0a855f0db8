//! The subcommands, one module each: [`run`] (a scenario to its verdict),
//! [`validate`] (a scenario checked, nothing connected), [`diff`] (two
//! profiles in, what grew out), [`snapshot`] (one settled measurement of a
//! running target), [`init`] (a starter scenario), [`compare`] (two runs'
//! reports, release against release), [`docs`] (completions and man pages).

pub mod compare;
pub mod diff;
pub mod docs;
pub mod init;
pub mod kube;
pub mod run;
pub mod snapshot;
pub mod validate;

use anyhow::{Context, Result, bail};
use http::Uri;

use crate::probe::Probe;

/// The async runtime the network commands run on, with leakbench's
/// allocator settings applied first.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    crate::alloc::configure();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// Parses `url` as an `http://` URL on a loopback host: leakbench talks to
/// nothing else (the same rule as a scenario's target.pprof).
pub fn loopback_http(url: &str) -> Result<Uri> {
    let uri: Uri = url
        .parse()
        .with_context(|| format!("`{url}` is not a URL"))?;
    if uri.scheme_str() != Some("http") {
        bail!("`{url}`: only http:// URLs are fetched (net/http/pprof serves plain HTTP)");
    }
    let host = uri.host().unwrap_or_default();
    if !crate::scenario::is_loopback_host(host) {
        bail!(
            "`{url}`: host `{host}` is not a loopback address; leakbench only talks to \
             127.0.0.0/8, ::1 or localhost (forward the port, e.g. ssh -L, to fetch a remote one)"
        );
    }
    Ok(uri)
}

/// A profile's bytes from a file or a loopback `http://` URL (as served:
/// gzip or not, decoding handles both).
pub async fn fetch(source: &str) -> Result<Vec<u8>> {
    if !source.starts_with("http://") && !source.starts_with("https://") {
        return std::fs::read(source).with_context(|| format!("reading {source}"));
    }
    let uri = loopback_http(source)?;
    let path_and_query = uri.path_and_query().map_or("/", |p| p.as_str());
    // The probe fetches `<base>/<name>`: split at the last slash of the path.
    let path_end = path_and_query.find('?').unwrap_or(path_and_query.len());
    let Some(slash) = path_and_query[..path_end].rfind('/').filter(|&i| i > 0) else {
        bail!(
            "`{source}`: expected a profile URL such as \
             http://127.0.0.1:6060/debug/pprof/heap (a path with a folder and a profile name)"
        );
    };
    let base: Uri = format!(
        "http://{}{}",
        uri.authority().map_or("", |a| a.as_str()),
        &path_and_query[..slash]
    )
    .parse()
    .with_context(|| format!("`{source}` is not a URL"))?;
    let mut probe = Probe::new(&base);
    let body = probe.get(&path_and_query[slash + 1..]).await?;
    probe.close();
    Ok(body.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_http_is_fetched() {
        assert!(loopback_http("http://127.0.0.1:6060/debug/pprof").is_ok());
        assert!(loopback_http("http://[::1]:6060/debug/pprof").is_ok());
        assert!(loopback_http("http://localhost:6060/x").is_ok());
        let e = loopback_http("http://10.1.2.3:6060/debug/pprof").unwrap_err();
        assert!(e.to_string().contains("loopback"), "{e}");
        let e = loopback_http("https://127.0.0.1/debug/pprof").unwrap_err();
        assert!(e.to_string().contains("http://"), "{e}");
    }

    #[tokio::test]
    async fn a_url_without_a_profile_name_is_refused_before_connecting() {
        let e = fetch("http://127.0.0.1:1/heap").await.unwrap_err();
        assert!(e.to_string().contains("profile URL"), "{e}");
    }
}
