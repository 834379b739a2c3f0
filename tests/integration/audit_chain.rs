//! The audit trail is an HMAC chain keyed by `CASESHARE_AUDIT_KEY` (R39):
//! sealed entries verify, and each attack behind the service's back — an
//! edit, a deletion, a reordering, an insertion, a truncation, removing the
//! tail (against a checkpoint), verifying without the key — is caught.

use crate::common::*;
use caseshare::audit::{self, AuditKey};
use serde_json::json;
use sqlx::Connection;

/// The key the test app seals with (no key configured: the development key).
fn key() -> AuditKey {
    AuditKey::new(crate::common::TEST_AUDIT_KEY.as_bytes())
}

async fn verify(app: &TestApp) -> Result<i64, audit::BrokenLink> {
    audit::verify(&app.db, &key(), None).await.unwrap()
}

async fn all_sealed(app: &TestApp) {
    eventually("audit entries sealed", || async {
        let unsealed: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM audit_log WHERE hash IS NULL AND id NOT IN (SELECT id FROM audit_refused)",
        )
        .fetch_one(&app.db)
        .await
        .ok()?;
        (unsealed == 0).then_some(())
    })
    .await;
}

/// Run `sql` with triggers off, as someone with direct database access could.
async fn behind_the_back(app: &TestApp, sql: &str) {
    let mut conn = sqlx::PgConnection::connect(&app.database_url)
        .await
        .unwrap();
    sqlx::query("SET session_replication_role = replica")
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::query(sql).execute(&mut conn).await.unwrap();
    conn.close().await.unwrap();
}

// R39
#[tokio::test]
async fn r39_audit_chain_verifies_and_catches_a_tampered_row() {
    let app = spawn_app().await;
    let a = app.create_org("Alpha PD", "lea").await;
    let case = app.create_case(&a.user, "Case").await;
    for i in 0..5 {
        app.add_evidence(&a.user, case, json!({ "title": format!("e{i}") }))
            .await;
    }
    all_sealed(&app).await;
    // R50: 3 bootstrap entries (the org, its admin and its user), the case, 5 items.
    assert_eq!(verify(&app).await, Ok(9));
    // The service itself cannot rewrite a sealed entry.
    assert!(
        sqlx::query("UPDATE audit_log SET hash = NULL WHERE seq = 1")
            .execute(&app.db)
            .await
            .is_err()
    );

    behind_the_back(
        &app,
        "UPDATE audit_log SET action = 'case_deleted' WHERE seq = 3",
    )
    .await;
    let broken = verify(&app).await.unwrap_err();
    assert_eq!(broken.seq, 3);
    assert!(broken.reason.contains("content"), "{broken:?}");
    app.stop().await;
}

// R39
#[tokio::test]
async fn r39_audit_chain_catches_a_deleted_row_and_keeps_sealing_new_entries() {
    let app = spawn_app().await;
    let a = app.create_org("Alpha PD", "lea").await;
    let case = app.create_case(&a.user, "Case").await;
    for i in 0..3 {
        app.add_evidence(&a.user, case, json!({ "title": format!("e{i}") }))
            .await;
    }
    all_sealed(&app).await;
    app.add_evidence(&a.user, case, json!({ "title": "later" }))
        .await;
    all_sealed(&app).await;
    assert_eq!(
        verify(&app).await,
        Ok(8),
        "new entries extend the chain (3 bootstrap entries, the case, 4 items)"
    );
    behind_the_back(&app, "DELETE FROM audit_log WHERE seq = 2").await;
    let broken = verify(&app).await.unwrap_err();
    assert_eq!(broken.seq, 3, "the entry after the deleted one");
    app.stop().await;
}

/// A sealed trail of the bootstrap entries, a case and `n` items.
async fn sealed_trail(n: usize) -> TestApp {
    let app = spawn_app().await;
    let a = app.create_org("Alpha PD", "lea").await;
    let case = app.create_case(&a.user, "Case").await;
    for i in 0..n {
        app.add_evidence(&a.user, case, json!({ "title": format!("e{i}") }))
            .await;
    }
    all_sealed(&app).await;
    app
}

// R39: reordering, inserting, truncating, and verifying with another key.
#[tokio::test]
async fn r39_audit_chain_catches_reordering_insertion_and_a_foreign_key() {
    let app = sealed_trail(3).await;
    assert_eq!(verify(&app).await, Ok(7));
    // Without the key the chain cannot be checked, let alone rewritten.
    let wrong = audit::verify(&app.db, &AuditKey::new(b"not the key"), None)
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(wrong.seq, 1, "{wrong:?}");
    // Two entries swapped in the chain's order.
    for sql in [
        "UPDATE audit_log SET seq = -4 WHERE seq = 4",
        "UPDATE audit_log SET seq = 4 WHERE seq = 5",
        "UPDATE audit_log SET seq = 5 WHERE seq = -4",
    ] {
        behind_the_back(&app, sql).await;
    }
    assert_eq!(verify(&app).await.unwrap_err().seq, 4);
    app.stop().await;

    let app = sealed_trail(3).await;
    // An entry forged at the end, linked to the last hash without the key.
    behind_the_back(
        &app,
        "INSERT INTO audit_log (org_id, action, details, seq, prev_hash, hash)
         SELECT org_id, 'case_deleted', '{}', seq + 1, hash, sha256(hash) FROM audit_log WHERE seq = 7",
    )
    .await;
    let broken = verify(&app).await.unwrap_err();
    assert_eq!(broken.seq, 8);
    assert!(broken.reason.contains("content"), "{broken:?}");
    app.stop().await;
}

// R39, issue 19: each entry is signed in the transaction that writes it, and
// the sealer chains only signed entries. Rows written by a plain INSERT, with
// no MAC or with another entry's, are refused: never sealed, absent from the
// case's trail and from a partner's audit snapshot, reported by `verify`;
// genuine entries written around them are sealed as before.
#[tokio::test]
async fn r39_rows_forged_by_insert_are_refused_not_sealed() {
    let app = spawn_app().await;
    let (a, b, case) = two_partners(&app, policy(true)).await;
    all_sealed(&app).await;
    let sealed = verify(&app).await.unwrap();
    // The service's own database role may insert (it writes the trail)...
    for mac in [
        "NULL",
        "(SELECT mac FROM audit_log WHERE mac IS NOT NULL ORDER BY id DESC LIMIT 1)",
    ] {
        sqlx::query(&format!(
            "INSERT INTO audit_log (org_id, action, case_id, details, mac)
             VALUES ($1, 'case_updated', $2, '{{\"forged\": true}}', {mac})"
        ))
        .bind(a.id)
        .bind(case)
        .execute(&app.db)
        .await
        .unwrap();
    }
    // ...and genuine entries follow.
    app.add_evidence(&a.user, case, json!({ "title": "after the forgery" }))
        .await;
    eventually("the forged rows refused", || async {
        (app.count("SELECT count(*) FROM audit_refused").await == 2).then_some(())
    })
    .await;
    all_sealed(&app).await;
    assert_eq!(
        app.count("SELECT count(*) FROM audit_log WHERE details ? 'forged' AND seq IS NOT NULL")
            .await,
        0,
        "a forged row is never sealed"
    );
    let reasons: Vec<String> = sqlx::query_scalar("SELECT reason FROM audit_refused ORDER BY id")
        .fetch_all(&app.db)
        .await
        .unwrap();
    assert!(reasons[0].contains("no MAC"), "{reasons:?}");
    assert!(reasons[1].contains("does not match"), "{reasons:?}");
    // The chain grew by the genuine entries only, and verify names the forgery.
    let broken = verify(&app).await.unwrap_err();
    assert!(broken.reason.contains("refused"), "{broken:?}");
    assert_eq!(
        app.count("SELECT count(*) FROM audit_log WHERE seq IS NOT NULL")
            .await,
        sealed + 1
    );
    // Neither the owner's trail nor the partner's snapshot shows them.
    let (_, trail) = app.get(&format!("/v1/cases/{case}/audit"), &a.user).await;
    assert!(
        trail["items"].as_array().is_some_and(|i| !i.is_empty()),
        "{trail}"
    );
    assert!(!trail.to_string().contains("forged"), "{trail}");
    app.share_case_with(&a.user, case, b.id).await;
    let (_, external) = app.get(&format!("/v1/cases/{case}/audit"), &b.admin).await;
    assert!(
        external["sender_snapshot"]["items"]
            .as_array()
            .is_some_and(|i| !i.is_empty()),
        "{external}"
    );
    assert!(!external.to_string().contains("forged"), "{external}");
    app.stop().await;
}

// R39: the service cannot truncate the trail; someone who truncates it or
// removes its last entries behind its back is caught by a checkpoint.
#[tokio::test]
async fn r39_checkpoint_catches_tail_deletion_and_truncation() {
    let app = sealed_trail(3).await;
    assert!(
        sqlx::query("TRUNCATE audit_log")
            .execute(&app.db)
            .await
            .is_err(),
        "TRUNCATE is refused"
    );
    let cp = audit::checkpoint(&app.db, &key()).await.unwrap().unwrap();
    assert_eq!(cp.seq, 7);
    assert_eq!(
        audit::verify(&app.db, &key(), Some(&cp)).await.unwrap(),
        Ok(7)
    );
    // A forged checkpoint (its hash changed) is refused.
    let mut forged = cp.clone();
    forged.seq = 6;
    assert!(audit::verify(&app.db, &key(), Some(&forged))
        .await
        .unwrap()
        .unwrap_err()
        .reason
        .contains("signature"));
    // The last two entries deleted: the chain alone still looks intact...
    behind_the_back(&app, "DELETE FROM audit_log WHERE seq >= 6").await;
    assert_eq!(verify(&app).await, Ok(5));
    // ...but not against the checkpoint.
    let broken = audit::verify(&app.db, &key(), Some(&cp))
        .await
        .unwrap()
        .unwrap_err();
    assert!(broken.reason.contains("end of the trail"), "{broken:?}");
    // Truncated behind the service's back: the same.
    behind_the_back(&app, "TRUNCATE audit_log").await;
    assert_eq!(verify(&app).await, Ok(0));
    assert!(audit::verify(&app.db, &key(), Some(&cp))
        .await
        .unwrap()
        .is_err());
    app.stop().await;
}

// R39, R60: production refuses to start without its own audit and download
// keys (each at least 32 characters); nothing falls back to a constant.
#[test]
fn r39_r60_production_needs_audit_and_download_keys() {
    let env = |vars: &'static [(&'static str, &'static str)]| {
        move |k: &str| {
            vars.iter()
                .find(|(name, _)| *name == k)
                .map(|(_, v)| v.to_string())
        }
    };
    let table =
        || toml::from_str::<toml::Table>(include_str!("../../config/default.toml")).unwrap();
    let refused = |vars: &'static [(&'static str, &'static str)], var: &str| {
        let e = caseshare::config::Settings::from_table_and_env(table(), env(vars)).unwrap_err();
        assert!(e.to_string().contains(var), "{e}");
    };
    const KEY: &str = "0123456789abcdef0123456789abcdef";
    refused(&[("CASESHARE_PRODUCTION", "true")], "CASESHARE_AUDIT_KEY");
    refused(
        &[
            ("CASESHARE_PRODUCTION", "true"),
            ("CASESHARE_AUDIT_KEY", "short"),
        ],
        "CASESHARE_AUDIT_KEY",
    );
    refused(
        &[
            ("CASESHARE_PRODUCTION", "true"),
            ("CASESHARE_AUDIT_KEY", KEY),
        ],
        "CASESHARE_DOWNLOAD_KEY",
    );
    // #22: and without an SMTP relay (elsewhere, emails go to .eml files).
    refused(
        &[
            ("CASESHARE_PRODUCTION", "true"),
            ("CASESHARE_AUDIT_KEY", KEY),
            ("CASESHARE_DOWNLOAD_KEY", KEY),
        ],
        "CASESHARE_SMTP_URL",
    );
    assert!(caseshare::config::Settings::from_table_and_env(
        table(),
        env(&[
            ("CASESHARE_PRODUCTION", "true"),
            ("CASESHARE_AUDIT_KEY", KEY),
            ("CASESHARE_DOWNLOAD_KEY", KEY),
            ("CASESHARE_SMTP_URL", "smtp://relay.example:25"),
        ]),
    )
    .is_ok());
}
