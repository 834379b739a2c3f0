//! #22: a client generated from the served OpenAPI document by a third-party
//! generator (openapi-python-client, from PyPI) builds with no warning, and a
//! first share runs through it end to end (`tests/clients/first_share.py`:
//! setup, a case with a file, a share, the received case, a download, an
//! import with its custody receipt, a revoke). `.ci/run` installs the
//! generator and sets `CASESHARE_REQUIRE_TOOLS=1`, so there it cannot be
//! skipped.

use crate::common::*;

#[tokio::test]
async fn a_generated_python_client_builds_cleanly_and_drives_a_first_share() {
    let Some(generator) = tool("openapi-python-client", "pip install openapi-python-client") else {
        return;
    };
    let app = spawn_app().await;
    let doc = app
        .client
        .get(format!("{}/openapi.json", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let dir = std::env::temp_dir().join(format!("caseshare-client-{}", app.prefix));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("openapi.json"), &doc).unwrap();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let generated = tokio::process::Command::new(&generator)
        .args(["generate", "--overwrite", "--path"])
        .arg(dir.join("openapi.json"))
        .arg("--output-path")
        .arg(dir.join("client"))
        .arg("--config")
        .arg(root.join("tests/clients/generator.yaml"))
        .output()
        .await
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&generated.stdout),
        String::from_utf8_lossy(&generated.stderr)
    );
    assert!(generated.status.success(), "the generator failed: {said}");
    for warning in [
        "WARNING",
        "Cannot parse",
        "Unable to",
        "will not be generated",
    ] {
        assert!(
            !said.contains(warning),
            "the generator warned ({warning}): {said}"
        );
    }
    let flow = tokio::process::Command::new("python3")
        .arg(root.join("tests/clients/first_share.py"))
        .env("PYTHONPATH", dir.join("client"))
        .env("CASESHARE_URL", &app.base)
        .env("CASESHARE_SERVICE_TOKEN", SERVICE_TOKEN)
        .output()
        .await
        .unwrap();
    let out = format!(
        "{}{}",
        String::from_utf8_lossy(&flow.stdout),
        String::from_utf8_lossy(&flow.stderr)
    );
    assert!(flow.status.success(), "the first share failed: {out}");
    assert!(out.contains("first share: done"), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
    app.stop().await;
}
