//! `[[load.request]]` and `[load] tls` / `connect_to` as plans: defaults, names, weights and
//! bodies; the refusals are in the malformed corpus (tests/malformed/mix, tls).

use super::*;

#[test]
fn a_mix_becomes_entries_with_names_weights_and_bodies() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("order.json"), br#"{"sku": 7}"#).unwrap();
    let path = dir.path().join("mix.toml");
    let text = r#"
[load]
target = "http://127.0.0.1:8080"
headers = { "x-team" = "shop", "content-type" = "text/plain" }

[[load.request]]
path = "/?sleep=10ms"
weight = 3

[[load.request]]
name = "place order"
method = "post"
path = "/"
headers = { "content-type" = "application/json" }
body_file = "order.json"

[[load.request]]
method = "PUT"
path = "/"
body = "hello"
"#;
    std::fs::write(&path, text).unwrap();
    let plan = crate::scenario::load(&path).unwrap();
    let mix = &plan.load.mix;
    let names: Vec<&str> = mix.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["GET /?sleep=10ms", "place order", "PUT /"]);
    assert_eq!(mix.iter().map(|e| e.weight).collect::<Vec<_>>(), [3, 1, 1]);
    assert_eq!(mix[1].method, http::Method::POST);
    assert_eq!(&mix[1].body[..], br#"{"sku": 7}"#);
    assert_eq!(&mix[2].body[..], b"hello");
    assert_eq!(mix[1].headers["content-type"], "application/json");
    // [load] headers stay the load's; an entry's own are merged over them when sent.
    assert_eq!(plan.load.headers["x-team"], "shop");
    assert!(
        ok("[load]\ntarget = \"http://127.0.0.1/x\"\n")
            .load
            .mix
            .is_empty()
    );
}

#[test]
fn https_targets_take_tls_and_connect_to() {
    let p = ok(r#"
[load]
target = "https://shop.staging.test/"
connect_to = "127.0.0.1:8443"
tls = { insecure = true }
"#);
    assert_eq!(p.load.connect_to.as_deref(), Some("127.0.0.1:8443"));
    assert!(p.load.tls.insecure && p.load.tls.ca.is_empty());
    // An edge with tls = true gets a certificate made for the run; the load trusts its CA.
    let p = ok(r#"
[lab]
kind = "swarm-local"
[service]
image = "x"
[edge]
publish = "127.0.0.1:8443"
tls = true
[load]
target = "https://localhost:8443/"
"#);
    let Setup::Lab(lab) = &p.setup else {
        panic!("a lab")
    };
    let cert = lab.edge.tls.as_ref().expect("a run certificate");
    assert_eq!(p.load.tls.ca, vec![cert.ca_der()]);
    assert!(
        !format!("{:?}", lab.edge).contains("PRIVATE KEY"),
        "the key stays out of Debug"
    );
}

#[test]
fn the_gate_can_bound_the_truth_mismatch() {
    let p = ok("[load]\ntarget = \"http://127.0.0.1/\"\n[gate]\nmax_truth_mismatch = 0\n");
    assert_eq!(p.gate.thresholds, vec![Threshold::MaxTruthMismatch(0)]);
}

#[test]
fn generators_take_any_body_up_to_what_their_environment_holds() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = |body: &[u8]| {
        std::fs::write(dir.path().join("body.bin"), body).unwrap();
        let path = dir.path().join("g.toml");
        let text = r#"
[lab]
kind = "swarm-cluster"
managers = 1
workers = 3
drain_managers = true

[service]
name = "app"
image = "rollcheck/testsvc:1"

[load]
target = "http://127.0.0.1:18080/"
generators = 3

[[load.request]]
method = "POST"
path = "/"
body_file = "body.bin"
"#;
        std::fs::write(&path, text).unwrap();
        crate::scenario::load(&path).map_err(|e| e.to_string())
    };
    // Bytes that are not UTF-8 travel to the agents (beside the scenario's text).
    let plan = scenario(&[0xff, 0x00, 0xfe]).unwrap();
    assert_eq!(&plan.load.mix[0].body[..], [0xff, 0x00, 0xfe]);
    // A body the agents' environment cannot hold is refused before the run, where the
    // generators were asked for.
    let e = scenario(&vec![b'x'; 100 * 1024]).unwrap_err();
    assert!(
        e.contains("g.toml:14:14: load.generators:") && e.contains("at most 96 KiB"),
        "{e}"
    );
}
