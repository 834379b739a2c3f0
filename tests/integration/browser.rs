//! #22: the link recipient's landing page in a real browser: headless
//! Chromium from Debian's packages, driven through chromedriver (WebDriver,
//! `fantoccini`). A live link shows the agency, the case, the files and a
//! working download button, styled by the stylesheet the page's strict CSP
//! lets it load; an expired and a withdrawn link show pages saying so. The
//! live page's screenshot is written to `target/link-landing.png` (the
//! README's is a copy). `.ci/run` installs `chromium` and `chromium-driver`
//! and sets `CASESHARE_REQUIRE_TOOLS=1`, so there it cannot be skipped.

use crate::common::*;

use fantoccini::{ClientBuilder, Locator};
use serde_json::json;
use std::time::Duration;

/// chromedriver on a free port, stopped when dropped.
struct Driver {
    child: tokio::process::Child,
    url: String,
}

impl Driver {
    async fn start(chromedriver: &std::path::Path) -> Driver {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = tokio::process::Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .kill_on_drop(true)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let url = format!("http://127.0.0.1:{port}");
        let status = format!("{url}/status");
        eventually("chromedriver to answer", || async {
            reqwest::get(&status)
                .await
                .ok()
                .filter(|r| r.status().is_success())
        })
        .await;
        Driver { child, url }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

async fn browser(driver: &Driver, chromium: &std::path::Path) -> fantoccini::Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chromium,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1000,1000", "--user-data-dir=".to_string()
                        + &std::env::temp_dir().join(format!("caseshare-chromium-{}", std::process::id())).display().to_string()]
        }),
    );
    // chromedriver on loopback speaks plain HTTP: no TLS stack needed.
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a Chromium session")
}

async fn text(c: &fantoccini::Client, css: &str) -> String {
    c.find(Locator::Css(css))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

// R40, #22
#[tokio::test]
async fn r40_the_landing_page_works_in_headless_chromium() {
    let install = "apt-get install chromium chromium-driver";
    let Some(chromium) = tool("chromium", install) else {
        return;
    };
    let Some(chromedriver) = tool("chromedriver", install) else {
        return;
    };
    let app = spawn_app().await;
    let (a, _, case) = partners_with_case(&app, BETA_PD, policy(true), "Burglary").await;
    let (item, _) = app
        .add_evidence(&a.user, case, json!({ "title": "Doorbell video" }))
        .await;
    put_file(&app, &a.user, item, vec![7u8; 250_000], "video/mp4").await;
    let mut links = Vec::new();
    for _ in 0..3 {
        let (s, v) = app
            .post(
                &format!("/v1/cases/{case}/link-shares"),
                &a.user,
                json!({ "scope": { "kind": "case" }, "recipient": { "email": "da@county.example" },
                        "package": "zip", "duration_hours": 24 }),
            )
            .await;
        assert_eq!(s, reqwest::StatusCode::ACCEPTED, "{v}");
        let id = v["id"].as_str().unwrap().to_string();
        let done = eventually("the package", || async {
            let (_, v) = app.get(&format!("/v1/link-shares/{id}"), &a.user).await;
            (v["status"] == "complete").then_some(v)
        })
        .await;
        // The page's path on this test's server (the harness's public URL
        // is a name of its own).
        let page = done["page_url"].as_str().unwrap();
        let path = &page[page.find("/links/").unwrap()..];
        links.push((id, format!("{}{path}", app.base)));
    }
    let driver = Driver::start(&chromedriver).await;
    let c = browser(&driver, &chromium).await;

    // Live.
    c.goto(&links[0].1).await.unwrap();
    assert_eq!(text(&c, "h1").await, "Burglary");
    assert!(text(&c, ".from").await.contains("Alpha PD"));
    let caption = text(&c, "caption").await;
    assert!(caption.contains("1 file, 251.0 kB in all"), "{caption}");
    let rows = c.find_all(Locator::Css("tbody tr")).await.unwrap();
    assert!(!rows.is_empty());
    let button = c.find(Locator::Css("a.download")).await.unwrap();
    let href = button.attr("href").await.unwrap().unwrap();
    assert!(href.starts_with("/v1/downloads/"), "{href}");
    // The stylesheet loaded under the CSP (the button is styled).
    let background = c
        .execute(
            "return getComputedStyle(document.querySelector('a.download')).backgroundColor",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        background,
        json!("rgb(11, 87, 208)"),
        "styled by the stylesheet"
    );
    let png = c.screenshot().await.unwrap();
    let shot = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/link-landing.png");
    let _ = std::fs::create_dir_all(shot.parent().unwrap());
    std::fs::write(&shot, png).unwrap();
    // The button downloads the package (as the browser would fetch it).
    let base = app.base.clone();
    let res = app
        .client
        .get(format!("{base}{href}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), reqwest::StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "application/zip");

    // Expired.
    sqlx::query(
        "UPDATE link_shares SET expires_at = now() - interval '1 minute' WHERE id = $1::uuid",
    )
    .bind(&links[1].0)
    .execute(&app.db)
    .await
    .unwrap();
    c.goto(&links[1].1).await.unwrap();
    assert_eq!(text(&c, "h1").await, "This link has expired");
    assert!(c.find(Locator::Css("a.download")).await.is_err());

    // Withdrawn.
    let (s, _) = app
        .post(
            &format!("/v1/link-shares/{}/revoke", links[2].0),
            &a.user,
            json!({}),
        )
        .await;
    assert_eq!(s, reqwest::StatusCode::OK);
    c.goto(&links[2].1).await.unwrap();
    assert_eq!(text(&c, "h1").await, "This link was withdrawn");

    c.close().await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    drop(driver);
    app.stop().await;
}
