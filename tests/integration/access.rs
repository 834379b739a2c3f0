//! Access control per principal (R41, R42), stopping sharing with one
//! principal (R44) and onward sharing of imported copies (R45), through the
//! HTTP API. The randomized whole-world check is in `isolation.rs`.

use crate::common::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

/// Every read route of one case.
fn case_reads(case: Uuid) -> Vec<String> {
    [
        "",
        "/evidence",
        "/folders",
        "/audit",
        "/shares",
        "/access",
        "/link-shares",
        "/dissemination",
    ]
    .iter()
    .map(|r| format!("/v1/cases/{case}{r}"))
    .collect()
}

async fn listed(app: &TestApp, token: &str, path: &str, key: &str) -> Vec<String> {
    let (s, v) = app.get(path, token).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i[key].as_str().unwrap().to_string())
        .collect()
}

// R41: inside its org a case is seen by its owner, the admins and those it
// was shared with internally (users, groups, at once on membership change);
// they read and add, only owner and admins manage; everyone else gets 404.
#[tokio::test]
async fn r41_case_access_is_per_principal_inside_the_org() {
    let w = World::spawn(BETA_PD, policy(true), "Homicide").await;
    let (app, a, case) = (&w.app, &w.a, w.case);
    let (named, named_token) = app.create_user(a.id, "Named Officer", "user").await;
    let (member, member_token) = app.create_user(a.id, "Group Member", "user").await;
    let (late, late_token) = app.create_user(a.id, "Late Joiner", "user").await;
    let squad = create_group(app, a.id, "Squad", &[member]).await;
    let (ev, job) = app
        .add_evidence(&a.user, case, json!({ "title": "statement" }))
        .await;
    app.drain().await;

    // Before any internal share: only owner and admin.
    for token in [&named_token, &member_token, &late_token] {
        assert_all_refused(
            app,
            case_reads(case)
                .iter()
                .map(|p| Call::get(p, token).refused(StatusCode::NOT_FOUND, "not_found"))
                .chain([
                    Call::get(format!("/v1/jobs/{job}"), token)
                        .status(StatusCode::NOT_FOUND)
                        .note("a job of a case the user does not see"),
                    Call::post(
                        format!("/v1/cases/{case}/evidence"),
                        token,
                        json!({ "title": "x" }),
                    )
                    .status(StatusCode::NOT_FOUND),
                ]),
        )
        .await;
        assert!(listed(app, token, "/v1/cases", "id").await.is_empty());
    }
    for token in [&a.user, &a.admin] {
        for path in case_reads(case) {
            let (s, v) = app.get(&path, token).await;
            assert_eq!(s, StatusCode::OK, "{path}: {v}");
        }
    }

    app.share_and_settle(
        &a.user,
        case,
        internal_share(json!([{ "user_id": named }, { "group_id": squad }])),
    )
    .await;
    for token in [&named_token, &member_token] {
        assert_eq!(
            listed(app, token, "/v1/cases", "id").await,
            vec![case.to_string()]
        );
        for path in case_reads(case) {
            let (s, v) = app.get(&path, token).await;
            assert_eq!(s, StatusCode::OK, "{path}: {v}");
        }
        let (s, v) = app.get(&format!("/v1/jobs/{job}"), token).await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }
    // Members read and add evidence and folders...
    let (s, v) = app
        .post(
            &format!("/v1/cases/{case}/evidence"),
            &named_token,
            json!({ "title": "added by a colleague" }),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let (s, v) = app
        .post(
            &format!("/v1/cases/{case}/folders"),
            &member_token,
            json!({ "name": "Squad notes" }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    // ...but only owner and admins manage it.
    let share_id = {
        let (_, v) = app.get(&format!("/v1/cases/{case}/shares"), &a.user).await;
        v["items"][0]["id"].as_str().unwrap().to_string()
    };
    assert_all_refused(
        app,
        [
            Call::patch(
                format!("/v1/cases/{case}"),
                &named_token,
                json!({ "title": "mine" }),
            )
            .refused(StatusCode::FORBIDDEN, "forbidden"),
            Call::post(
                format!("/v1/cases/{case}/shares"),
                &named_token,
                to_partner(w.b.id, json!({ "kind": "case" })),
            )
            .refused(StatusCode::FORBIDDEN, "forbidden"),
            Call::post(
                format!("/v1/cases/{case}/link-shares"),
                &member_token,
                json!({ "scope": { "kind": "case" }, "recipient": { "email": "x@y.example" },
                        "package": "zip", "duration_hours": 24 }),
            )
            .refused(StatusCode::FORBIDDEN, "forbidden"),
            Call::new(
                Method::POST,
                format!("/v1/shares/{share_id}/revoke"),
                Some(named_token.as_str()),
                None,
            )
            .refused(StatusCode::FORBIDDEN, "forbidden"),
            Call::post(
                format!("/v1/cases/{case}/access/revoke"),
                &member_token,
                json!({ "kind": "user", "id": named }),
            )
            .refused(StatusCode::FORBIDDEN, "forbidden"),
        ],
    )
    .await;
    // The outsider still sees nothing, not even the evidence's content route.
    assert_all_refused(
        app,
        case_reads(case)
            .iter()
            .map(|p| Call::get(p, &late_token).status(StatusCode::NOT_FOUND))
            .chain([
                Call::raw(
                    Method::PUT,
                    format!("/v1/evidence/{ev}/content"),
                    &late_token,
                    "bytes",
                )
                .status(StatusCode::NOT_FOUND),
                // R52: nor read the file.
                Call::get(format!("/v1/evidence/{ev}/content"), &late_token)
                    .status(StatusCode::NOT_FOUND),
            ]),
    )
    .await;
    // Group membership acts at once, both ways (a directory sync writes it).
    app.count(&format!(
        "WITH i AS (INSERT INTO group_members (group_id, org_id, user_id) VALUES ('{squad}', '{}', '{late}') RETURNING 1) SELECT count(*) FROM i",
        a.id
    ))
    .await;
    app.count(&format!(
        "WITH d AS (DELETE FROM group_members WHERE user_id = '{member}' RETURNING 1) SELECT count(*) FROM d"
    ))
    .await;
    let (s, _) = app.get(&format!("/v1/cases/{case}"), &late_token).await;
    assert_eq!(s, StatusCode::OK, "joined the group: sees the case");
    let (s, _) = app.get(&format!("/v1/cases/{case}"), &member_token).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "left the group: sees it no more");
    w.app.stop().await;
}

// R42: at a receiver, admins and the share's named principals (users,
// groups, email and badge holders) see the case, and those added onward;
// a share naming no one is for the admins.
#[tokio::test]
async fn r42_received_case_is_seen_by_admins_and_named_recipients_only() {
    let w = World::spawn(BETA_PD, policy(true), "Arson").await;
    let (app, a, b, case) = (&w.app, &w.a, &w.b, w.case);
    let (bystander, bystander_token) = app.create_user(b.id, "Bystander", "user").await;
    let (by_mail, by_mail_token) = app.create_user(b.id, "Mail Named", "user").await;
    let (in_group, in_group_token) = app.create_user(b.id, "Group Named", "user").await;
    let team = create_group(app, b.id, "Team", &[in_group]).await;
    let mail = app.user_email(by_mail).await;
    app.add_evidence(&a.user, case, json!({ "title": "photo" }))
        .await;
    app.share_and_settle(
        &a.user,
        case,
        partner_share(
            b.id,
            json!([{ "user_id": b.user_id }, { "email": mail.to_uppercase() }, { "group_id": team }]),
        ),
    )
    .await;
    for token in [&b.admin, &b.user, &by_mail_token, &in_group_token] {
        let (s, v) = app.get(&format!("/v1/cases/{case}/evidence"), token).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["items"].as_array().unwrap().len(), 1);
        assert_eq!(listed(app, token, "/v1/received", "case_id").await.len(), 1);
        assert_eq!(
            listed(app, token, "/v1/cases?external=true", "id").await,
            vec![case.to_string()]
        );
    }
    let received_id = listed(app, &b.admin, "/v1/received", "id").await[0].clone();
    assert_all_refused(
        app,
        ["", "/evidence", "/folders", "/audit", "/import-details"]
            .iter()
            .map(|r| {
                Call::get(format!("/v1/cases/{case}{r}"), &bystander_token)
                    .status(StatusCode::NOT_FOUND)
            })
            .chain([
                Call::post(
                    format!("/v1/received/{received_id}/import"),
                    &bystander_token,
                    json!({}),
                )
                .status(StatusCode::NOT_FOUND),
                Call::post(
                    format!("/v1/cases/{case}/recipients"),
                    &bystander_token,
                    json!({ "user_id": bystander }),
                )
                .status(StatusCode::NOT_FOUND),
            ]),
    )
    .await;
    assert!(listed(app, &bystander_token, "/v1/received", "id")
        .await
        .is_empty());
    assert!(listed(app, &bystander_token, "/v1/cases", "id")
        .await
        .is_empty());
    // R50: every read of the external case is audited with its reader.
    let reads = app
        .count(&format!(
            "SELECT count(*) FROM audit_log
             WHERE action = 'access_external' AND actor_user_id = '{}' AND case_id = '{case}'
               AND details ->> 'read' = 'evidence'",
            b.user_id
        ))
        .await;
    assert!(
        reads >= 1,
        "the evidence read by the named user is in the trail"
    );

    // Imported by a named recipient: the copy is seen by the admins and the
    // collaboration's recipients, not by the bystander.
    let (s, v) = app
        .post(
            &format!("/v1/received/{received_id}/import"),
            &b.user,
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    app.drain().await;
    let imported = listed(app, &b.admin, "/v1/received", "imported_case_id").await[0].clone();
    for token in [&b.admin, &b.user, &by_mail_token, &in_group_token] {
        let (s, v) = app.get(&format!("/v1/cases/{imported}"), token).await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }
    let (s, _) = app
        .get(&format!("/v1/cases/{imported}"), &bystander_token)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // A share naming no one: the receiving admins only.
    let c = app.create_org("Gamma PD", "lea").await;
    app.partner(a.id, c.id).await;
    app.share_case_with(&a.user, case, c.id).await;
    let (s, _) = app.get(&format!("/v1/cases/{case}"), &c.admin).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = app.get(&format!("/v1/cases/{case}"), &c.user).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    w.app.stop().await;
}

async fn stop(app: &TestApp, token: &str, case: Uuid, kind: &str, id: Uuid) -> (StatusCode, Value) {
    app.post(
        &format!("/v1/cases/{case}/access/revoke"),
        token,
        json!({ "kind": kind, "id": id }),
    )
    .await
}

fn access_ids(v: &Value) -> Vec<String> {
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["id"].as_str().map(str::to_string))
        .collect()
}

// R44: stop sharing with one principal: an internal user or group, a named
// recipient at a partner, or a partner org; at once, audited, emailed, idempotent.
#[tokio::test]
async fn r44_stop_sharing_with_one_principal() {
    let w = World::spawn(BETA_PD, policy(true), "Fraud").await;
    let (app, a, b, case) = (&w.app, &w.a, &w.b, w.case);
    let (colleague, colleague_token) = app.create_user(a.id, "Colleague", "user").await;
    let (member, member_token) = app.create_user(a.id, "Member", "user").await;
    let unit = create_group(app, a.id, "Unit", &[member]).await;
    app.add_evidence(&a.user, case, json!({ "title": "ledger" }))
        .await;
    app.share_and_settle(
        &a.user,
        case,
        internal_share(json!([{ "user_id": colleague }, { "group_id": unit }])),
    )
    .await;
    app.share_and_settle(
        &a.user,
        case,
        partner_share(b.id, json!([{ "user_id": b.user_id }])),
    )
    .await;
    let case_path = format!("/v1/cases/{case}");
    for token in [&colleague_token, &member_token, &b.user, &b.admin] {
        assert_eq!(app.get(&case_path, token).await.0, StatusCode::OK);
    }

    // Refusals change nothing.
    let (outsider, outsider_token) = app.create_user(a.id, "Outsider", "user").await;
    assert_all_refused(
        app,
        [
            Call::post(
                format!("{case_path}/access/revoke"),
                &colleague_token,
                json!({ "kind": "user", "id": member }),
            )
            .refused(StatusCode::FORBIDDEN, "forbidden")
            .note("sees the case, does not manage it"),
            Call::post(
                format!("{case_path}/access/revoke"),
                &outsider_token,
                json!({ "kind": "user", "id": colleague }),
            )
            .refused(StatusCode::NOT_FOUND, "not_found"),
            Call::post(
                format!("{case_path}/access/revoke"),
                &b.admin,
                json!({ "kind": "user", "id": b.user_id }),
            )
            .refused(StatusCode::FORBIDDEN, "forbidden")
            .note("the receiver does not manage the owner's case"),
            Call::post(
                format!("{case_path}/access/revoke"),
                &a.user,
                json!({ "kind": "user", "id": b.user_id }),
            )
            .refused(StatusCode::UNPROCESSABLE_ENTITY, "validation")
            .note("a partner's user is a recipient, not an internal user"),
            Call::post(
                format!("{case_path}/access/revoke"),
                &a.user,
                json!({ "kind": "user", "id": a.user_id }),
            )
            .refused(StatusCode::UNPROCESSABLE_ENTITY, "validation")
            .note("the owner stays"),
            Call::post(
                format!("{case_path}/access/revoke"),
                &a.user,
                json!({ "kind": "group", "id": Uuid::new_v4() }),
            )
            .refused(StatusCode::UNPROCESSABLE_ENTITY, "validation"),
            Call::post(
                format!("{case_path}/access/revoke"),
                &a.user,
                json!({ "kind": "planet", "id": outsider }),
            )
            .refused(StatusCode::UNPROCESSABLE_ENTITY, "validation"),
        ],
    )
    .await;

    // An internal user: gone at once, from the access list too; audited; emailed once.
    let (s, v) = stop(app, &a.user, case, "user", colleague).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    assert_eq!(
        app.get(&case_path, &colleague_token).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(app.get(&case_path, &member_token).await.0, StatusCode::OK);
    let job: Uuid = v["job_id"].as_str().unwrap().parse().unwrap();
    assert_eq!(app.wait_job(job).await, "complete");
    let (s, v) = stop(app, &a.user, case, "user", colleague).await;
    assert_eq!(
        s,
        StatusCode::ACCEPTED,
        "a repeat is accepted and changes nothing"
    );
    app.wait_job(v["job_id"].as_str().unwrap().parse().unwrap())
        .await;
    app.drain().await;
    let to_colleague = mails_to(app, &app.user_email(colleague).await);
    let stopped: Vec<_> = to_colleague
        .iter()
        .filter(|m| subject(m).contains("stopped sharing"))
        .collect();
    assert_eq!(stopped.len(), 1, "one email, however often it is repeated");
    let (_, access) = app.get(&format!("{case_path}/access"), &a.user).await;
    assert!(
        !access_ids(&access).contains(&colleague.to_string()),
        "{access}"
    );
    assert!(access_ids(&access).contains(&unit.to_string()), "{access}");
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM audit_log WHERE action = 'access_revoked' AND case_id = '{case}'"
        ))
        .await,
        1
    );

    // A group: its members lose access.
    let (s, _) = stop(app, &a.admin, case, "group", unit).await;
    assert_eq!(s, StatusCode::ACCEPTED);
    assert_eq!(
        app.get(&case_path, &member_token).await.0,
        StatusCode::NOT_FOUND
    );

    // A named recipient at the partner: that user loses the external view,
    // the partner's admins keep it.
    let (s, _) = stop(app, &a.user, case, "recipient", b.user_id).await;
    assert_eq!(s, StatusCode::ACCEPTED);
    assert_eq!(app.get(&case_path, &b.user).await.0, StatusCode::NOT_FOUND);
    assert_eq!(app.get(&case_path, &b.admin).await.0, StatusCode::OK);

    // The partner org: all its shares of the case are revoked.
    let (s, v) = stop(app, &a.user, case, "org", b.id).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    assert_eq!(app.get(&case_path, &b.admin).await.0, StatusCode::NOT_FOUND);
    assert_eq!(
        app.wait_job(v["job_id"].as_str().unwrap().parse().unwrap())
            .await,
        "complete"
    );
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM shares WHERE case_id = '{case}' AND target_org_id = '{}' AND status <> 'revoked'",
            b.id
        ))
        .await,
        0
    );
    app.drain().await;
    let to_b = mails_to(app, &app.user_email(b.user_id).await);
    assert!(
        to_b.iter().any(|m| subject(m).contains("stopped sharing")),
        "the named recipient is told"
    );
    w.app.stop().await;
}

// R45: an imported copy goes to another org or by link only under
// `copy_download`, gains recipients only under `internal_share`, and shows in
// the originating case's dissemination log.
#[tokio::test]
async fn r45_imported_copy_goes_onward_only_as_the_origin_policy_allows() {
    let w = World::spawn(BETA_PD, policy(true), "Smuggling").await;
    let (app, a, b, case) = (&w.app, &w.a, &w.b, w.case);
    let c = app.create_org("Gamma PD", "lea").await;
    app.partner(b.id, c.id).await;
    app.setup(b, policy(true), false).await;
    let (first, _) = app
        .add_evidence(&a.user, case, json!({ "title": "manifest" }))
        .await;
    app.share_and_settle(
        &a.user,
        case,
        to_partner(b.id, json!({ "kind": "evidence", "evidence_ids": [first] })),
    )
    .await;
    let received_id = listed(app, &b.admin, "/v1/received", "id").await[0].clone();
    let (s, v) = app
        .post(
            &format!("/v1/received/{received_id}/import"),
            &b.admin,
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    app.drain().await;
    let imported = listed(app, &b.admin, "/v1/received", "imported_case_id").await[0].clone();
    let imported: Uuid = imported.parse().unwrap();

    // Allowed: shared on with Gamma; the origin's log shows it.
    app.share_and_settle(
        &b.admin,
        imported,
        to_partner(c.id, json!({ "kind": "case" })),
    )
    .await;
    let (s, log) = app
        .get(&format!("/v1/cases/{case}/dissemination"), &a.user)
        .await;
    assert_eq!(s, StatusCode::OK, "{log}");
    let entry = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "share")
        .expect("the onward share is in the origin's log")
        .clone();
    assert_eq!(entry["recipient_id"], c.id.to_string());
    assert_eq!(entry["receiving_org_id"], b.id.to_string());

    // A stricter later share governs the collaboration (R43): no copy, no
    // onward sharing any more.
    let mut strict = policy(true);
    set(&mut strict, "permissions.copy_download", false);
    set(&mut strict, "permissions.internal_share", false);
    let (_, p) = app.post("/v1/policies", &a.admin, strict).await;
    app.put(
        &format!("/v1/partners/{}/policy", b.id),
        &a.admin,
        json!({ "policy_id": p["id"] }),
    )
    .await;
    let (second, _) = app
        .add_evidence(&a.user, case, json!({ "title": "invoice" }))
        .await;
    app.share_and_settle(
        &a.user,
        case,
        to_partner(
            b.id,
            json!({ "kind": "evidence", "evidence_ids": [second] }),
        ),
    )
    .await;
    let shares_before = app.count("SELECT count(*) FROM shares").await;
    assert_all_refused(
        app,
        [
            Call::post(
                format!("/v1/cases/{imported}/shares"),
                &b.admin,
                to_partner(c.id, json!({ "kind": "case" })),
            )
            .refused(StatusCode::FORBIDDEN, "policy_forbids"),
            Call::post(
                format!("/v1/cases/{imported}/link-shares"),
                &b.admin,
                json!({ "scope": { "kind": "case" }, "recipient": { "email": "x@y.example" },
                        "package": "zip", "duration_hours": 24 }),
            )
            .refused(StatusCode::FORBIDDEN, "policy_forbids"),
            Call::post(
                format!("/v1/cases/{imported}/shares"),
                &b.admin,
                internal_share(json!([{ "user_id": b.user_id }])),
            )
            .refused(StatusCode::FORBIDDEN, "policy_forbids"),
        ],
    )
    .await;
    assert_eq!(
        app.count("SELECT count(*) FROM shares").await,
        shares_before
    );
    w.app.stop().await;
}

// R47: a link share's recipient may be a group (every member gets the link);
// R45: a partner's users get a link only where the policy for that partner
// allows copy/download.
#[tokio::test]
async fn r45_r47_link_shares_to_partner_groups_follow_copy_download() {
    let w = World::spawn(BETA_PD, policy(true), "Forgery").await;
    let (app, a, b, case) = (&w.app, &w.a, &w.b, w.case);
    let (analyst, _) = app.create_user(b.id, "Beta Analyst", "user").await;
    let desk = create_group(app, b.id, "Desk", &[b.user_id, analyst]).await;
    let body = |recipient: Value| json!({ "scope": { "kind": "case" }, "recipient": recipient, "package": "zip", "duration_hours": 24 });
    let (s, v) = app
        .post(
            &format!("/v1/cases/{case}/link-shares"),
            &a.user,
            body(json!({ "group_id": desk })),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    eventually("the link share to complete", || async {
        let (_, v) = app.get(&format!("/v1/link-shares/{id}"), &a.user).await;
        (v["status"] == "complete").then_some(())
    })
    .await;
    app.drain().await;
    for member in [b.user_id, analyst] {
        let mails = mails_to(app, &app.user_email(member).await);
        assert_eq!(mails.len(), 1, "each member gets the link once");
        assert!(readable(&mails[0]).contains("/links/"));
    }

    let mut no_copy = policy(true);
    set(&mut no_copy, "permissions.copy_download", false);
    let (_, p) = app.post("/v1/policies", &a.admin, no_copy).await;
    app.put(
        &format!("/v1/partners/{}/policy", b.id),
        &a.admin,
        json!({ "policy_id": p["id"] }),
    )
    .await;
    let path = format!("/v1/cases/{case}/link-shares");
    assert_all_refused(
        app,
        [
            Call::post(&path, &a.user, body(json!({ "user_id": b.user_id })))
                .refused(StatusCode::FORBIDDEN, "policy_forbids"),
            Call::post(&path, &a.user, body(json!({ "group_id": desk })))
                .refused(StatusCode::FORBIDDEN, "policy_forbids"),
            Call::post(&path, &a.user, body(json!({ "group_id": Uuid::new_v4() })))
                .refused(StatusCode::UNPROCESSABLE_ENTITY, "validation"),
        ],
    )
    .await;
    w.app.stop().await;
}
