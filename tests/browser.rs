//! The headless-Chromium checker used on reports can fail: a page that calls out to the
//! network or logs a console error is caught. (The reports themselves are checked in
//! tests/scenarios.rs, on the runs that made them.)

mod common;

#[test]
fn chromium_check_catches_network_requests_and_console_errors() {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("bad.html");
    std::fs::write(
        &page,
        r#"<html><body><svg width="10" height="10"><rect width="5" height="5"/></svg>
<img src="http://127.0.0.1:9/x.png"><script>console.error("boom")</script></body></html>"#,
    )
    .unwrap();
    let r = common::chromium(&page, &dir.path().join("bad.png"));
    assert!(r.dom.contains("<rect"), "{}", r.dom);
    assert_eq!(r.network, ["http://127.0.0.1:9/x.png"]);
    assert_eq!(r.console.len(), 1, "{:?}", r.console);
    assert!(dir.path().join("bad.png").exists());

    let page = dir.path().join("good.html");
    std::fs::write(&page, "<html><body><p>ok</p></body></html>").unwrap();
    let r = common::chromium(&page, &dir.path().join("good.png"));
    assert!(r.network.is_empty(), "{:?}", r.network);
    assert!(r.console.is_empty(), "{:?}", r.console);
}
