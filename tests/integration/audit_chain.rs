//! The audit trail is a hash chain (R39): sealed entries verify, and an entry
//! edited or deleted behind the service's back breaks the chain at that point.

use crate::common::*;
use serde_json::json;
use sqlx::Connection;

async fn all_sealed(app: &TestApp) {
    eventually("audit entries sealed", || async {
        let unsealed: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE hash IS NULL")
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
    assert_eq!(caseshare::audit::verify(&app.db).await.unwrap(), Ok(9));
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
    let broken = caseshare::audit::verify(&app.db)
        .await
        .unwrap()
        .unwrap_err();
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
        caseshare::audit::verify(&app.db).await.unwrap(),
        Ok(8),
        "new entries extend the chain (3 bootstrap entries, the case, 4 items)"
    );
    behind_the_back(&app, "DELETE FROM audit_log WHERE seq = 2").await;
    let broken = caseshare::audit::verify(&app.db)
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(broken.seq, 3, "the entry after the deleted one");
    app.stop().await;
}
