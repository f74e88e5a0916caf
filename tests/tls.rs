//! https end to end on loopback: `rollcheck serve --tls-cert` with a certificate made at run
//! time, the load's client trusting it (or not), `connect_to` for a staging host name, and a
//! whole `rollcheck run` whose summary reports the handshakes.

mod common;

use common::Service;
use common::run::run;
use rollcheck::clock::Clock;
use rollcheck::load::client::{self, Options, Target};
use rollcheck::load::record::RequestRecord;
use rollcheck::outcome::Outcome;
use rollcheck::tls::{RunCertificate, Trust};
use std::path::Path;
use std::time::Duration;

/// A CA and a certificate for `names`, written to `dir` as ca.pem, cert.pem, key.pem.
fn certificate(dir: &Path, names: &[&str]) -> RunCertificate {
    let c = RunCertificate::generate("rollcheck test CA", names).unwrap();
    std::fs::write(dir.join("ca.pem"), &c.ca_pem).unwrap();
    std::fs::write(dir.join("cert.pem"), &c.cert_pem).unwrap();
    std::fs::write(dir.join("key.pem"), &c.key_pem).unwrap();
    c
}

/// `rollcheck serve` over https with dir's cert.pem and key.pem.
fn serve_https(dir: &Path, delay: &str) -> Service {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    Service::start(
        &[
            "--delay",
            delay,
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
        &[("VERSION", "3")],
    )
}

fn options(trust: Trust, keepalive: bool) -> Options {
    Options {
        keepalive,
        connect_timeout: Duration::from_secs(2),
        timeout: Duration::from_secs(5),
        trust,
        ..Default::default()
    }
}

async fn one(url: &str, opts: &Options) -> RequestRecord {
    let t = Target::from_uri(&url.parse().unwrap(), opts).unwrap();
    let clock = Clock::start();
    client::send(&t, &clock, 1, clock.now(), None).await.0
}

#[tokio::test]
async fn a_trusted_certificate_is_served_and_its_handshake_timed() {
    let dir = tempfile::tempdir().unwrap();
    let c = certificate(dir.path(), &["localhost", "127.0.0.1"]);
    let svc = serve_https(dir.path(), "0s");
    let trust = Trust {
        ca: vec![c.ca_der()],
        insecure: false,
    };
    let opts = options(trust, true);
    let t = Target::from_uri(&format!("https://{}/", svc.addr).parse().unwrap(), &opts).unwrap();
    let clock = Clock::start();
    let (a, conn) = client::send(&t, &clock, 1, clock.now(), None).await;
    let (b, _) = client::send(&t, &clock, 2, clock.now(), conn).await;
    assert_eq!(
        (a.outcome, a.status),
        (Outcome::Ok, Some(200)),
        "{}",
        a.error
    );
    assert_eq!(a.version, "3");
    // The handshake is its own phase, after connect and before the first byte.
    let (connected, tls, first) = (a.connected.unwrap(), a.tls.unwrap(), a.first_byte.unwrap());
    assert!(
        connected < tls && tls <= first,
        "{connected:?} {tls:?} {first:?}"
    );
    assert!(a.tls_time().unwrap() > Duration::ZERO);
    // A kept-alive https connection carries the next request without a handshake.
    assert_eq!((b.outcome, b.reused, b.tls), (Outcome::Ok, true, None));
}

#[tokio::test]
async fn an_untrusted_certificate_is_a_tls_handshake_failure_that_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    certificate(dir.path(), &["localhost", "127.0.0.1"]);
    let svc = serve_https(dir.path(), "0s");
    let url = format!("https://{}/", svc.addr);
    // Another CA than the one that signed the server's certificate.
    let other = RunCertificate::generate("someone else's CA", &["localhost"]).unwrap();
    let trust = Trust {
        ca: vec![other.ca_der()],
        insecure: false,
    };
    let r = one(&url, &options(trust, false)).await;
    assert_eq!(r.outcome, Outcome::TlsHandshake);
    assert!(r.connected.is_some() && r.tls.is_none() && r.first_byte.is_none());
    assert!(
        r.error.contains("unknown issuer") && r.error.contains("tls = { ca = "),
        "{}",
        r.error
    );
    // insecure = true accepts it: still TLS, handshake timed.
    let insecure = Trust {
        ca: Vec::new(),
        insecure: true,
    };
    let r = one(&url, &options(insecure, false)).await;
    assert_eq!(r.outcome, Outcome::Ok, "{}", r.error);
    assert!(r.tls.is_some());
}

#[tokio::test]
async fn connect_to_sends_a_staging_name_and_its_sni_to_a_local_address() {
    let dir = tempfile::tempdir().unwrap();
    let c = certificate(dir.path(), &["shop.staging.test"]);
    let svc = serve_https(dir.path(), "0s");
    let trust = Trust {
        ca: vec![c.ca_der()],
        insecure: false,
    };
    let mut opts = options(trust, false);
    opts.connect_to = Some(("shop.staging.test:443".into(), svc.addr.clone()));
    let r = one("https://shop.staging.test/", &opts).await;
    assert_eq!(r.outcome, Outcome::Ok, "{}", r.error);
    // Without connect_to the same certificate is not valid for the address itself.
    opts.connect_to = None;
    let r = one(&format!("https://{}/", svc.addr), &opts).await;
    assert_eq!(r.outcome, Outcome::TlsHandshake);
    assert!(
        r.error.contains("not valid for this host name"),
        "{}",
        r.error
    );
}

#[tokio::test]
async fn plain_http_to_an_https_port_and_https_to_a_plain_port_fail_the_handshake() {
    let dir = tempfile::tempdir().unwrap();
    let c = certificate(dir.path(), &["127.0.0.1"]);
    let plain = Service::start(&["--delay", "0s"], &[]);
    let trust = Trust {
        ca: vec![c.ca_der()],
        insecure: false,
    };
    let r = one(&format!("https://{}/", plain.addr), &options(trust, false)).await;
    assert_eq!(r.outcome, Outcome::TlsHandshake, "{}", r.error);
}

/// A whole run against an https service: with the CA it passes and reports handshake times
/// (summary, text, requests.csv); with another CA every request is a `tls_handshake` failure
/// and the run fails with the reason.
#[test]
fn a_run_over_https_reports_handshakes_and_fails_on_an_untrusted_certificate() {
    let dir = tempfile::tempdir().unwrap();
    certificate(dir.path(), &["shop.staging.test"]);
    let svc = serve_https(dir.path(), "50ms");
    let other = RunCertificate::generate("someone else's CA", &["x"]).unwrap();
    std::fs::write(dir.path().join("other-ca.pem"), &other.ca_pem).unwrap();
    let scenario = |ca: &str| {
        let path = dir.path().join(format!("https-{ca}.toml"));
        std::fs::write(
            &path,
            format!(
                r#"title = "https"
[load]
target = "https://shop.staging.test/"
connect_to = "{}"
tls = {{ ca = "{ca}" }}
concurrency = 4
duration = "2s"
"#,
                svc.addr
            ),
        )
        .unwrap();
        path
    };

    let r = run(&scenario("ca.pem"));
    let (s, report) = (&r.summary, &r.dir);
    assert_eq!(r.code(), Some(0), "{}", r.context());
    let total = s["requests"]["total"].as_u64().unwrap();
    assert!(total > 20, "{total}");
    assert_eq!(s["outcomes"]["ok"].as_u64(), Some(total));
    // A new connection per request: one handshake each.
    assert_eq!(s["tls_handshake_ms"]["count"].as_u64(), Some(total));
    assert!(s["tls_handshake_ms"]["p50"].as_f64().unwrap() > 0.0);
    let text = std::fs::read_to_string(report.join("summary.txt")).unwrap();
    assert!(text.contains("TLS"), "{text}");
    let csv = std::fs::read_to_string(report.join("requests.csv")).unwrap();
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let at = header
        .iter()
        .position(|h| *h == "tls_ms")
        .expect("tls_ms column");
    let row: Vec<&str> = csv.lines().nth(1).unwrap().split(',').collect();
    assert!(!row[at].is_empty(), "{csv}");
    let html = std::fs::read_to_string(report.join("report.html")).unwrap();
    assert!(html.contains("TLS handshake (ms)"), "the chart's TLS panel");

    let r = run(&scenario("other-ca.pem"));
    let (s, report) = (&r.summary, &r.dir);
    assert_eq!(r.code(), Some(1), "{}", r.context());
    let total = s["requests"]["total"].as_u64().unwrap();
    assert!(total > 0);
    assert_eq!(s["outcomes"]["tls_handshake"].as_u64(), Some(total));
    assert_eq!(s["requests"]["dropped"].as_u64(), Some(total));
    let text = std::fs::read_to_string(report.join("summary.txt")).unwrap();
    assert!(
        text.contains("tls_handshake") && text.contains("unknown issuer"),
        "{text}"
    );
}
