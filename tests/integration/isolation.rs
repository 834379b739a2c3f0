//! The randomized isolation check (R41–R45, R10): three partnered orgs with
//! users and groups, random internal and partner shares naming random
//! principals, onward additions, imports, revocations, stop-sharings and
//! group membership changes; then every user calls every read route with
//! every case id of the world, and each answer is compared with an oracle
//! computed from the rules by a model kept beside the API calls: visible or
//! 404, the lists, and for visible external items only the fields the
//! policy of the share allows. Seeded: `CASESHARE_ISOLATION_SEED=<n>`
//! replays a run (the seed is printed, and named in every failure).

use crate::common::*;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::{BTreeSet, HashMap};
use uuid::Uuid;

const ORGS: usize = 3;
const OPS: usize = 60;

struct User {
    id: Uuid,
    org: usize,
    admin: bool,
    token: String,
}

struct Case {
    id: Uuid,
    org: usize,
    /// The owner: its creator, or the importing admin of an imported copy.
    owner: Uuid,
    /// For an imported copy: the origin case.
    imported_from: Option<Uuid>,
    evidence: usize,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Cause {
    Share(Uuid),
    Onward,
}

/// A `case_access` row as the rules describe it.
#[derive(Debug)]
struct Row {
    case: Uuid,
    org: usize,
    principal: Uuid,
    cause: Cause,
    revoked: bool,
    deleted: bool,
}

struct Share {
    id: Uuid,
    case: Uuid,
    target: Option<usize>,
    live: bool,
}

struct Collab {
    received_id: String,
    live: bool,
    imported: Option<Uuid>,
}

struct Model {
    users: Vec<User>,
    orgs: Vec<Org>,
    groups: Vec<Uuid>,
    members: Vec<BTreeSet<Uuid>>,
    cases: Vec<Case>,
    shares: Vec<Share>,
    rows: Vec<Row>,
    collabs: HashMap<(Uuid, usize), Collab>,
}

/// The sharing policy from org `from` to org `to`: open one way round the
/// ring, strict (nothing, no copy, no onward) the other.
fn open(from: usize, to: usize) -> bool {
    to == (from + 1) % ORGS
}

impl Model {
    fn principals(&self, u: &User) -> Vec<Uuid> {
        let mut p = vec![u.id];
        if self.members[u.org].contains(&u.id) {
            p.push(self.groups[u.org]);
        }
        p
    }

    fn named(&self, case: Uuid, org: usize, p: &[Uuid], live_only: bool) -> bool {
        self.rows.iter().any(|r| {
            r.case == case
                && r.org == org
                && !r.deleted
                && (!live_only || !r.revoked)
                && p.contains(&r.principal)
        })
    }

    fn case(&self, id: Uuid) -> &Case {
        self.cases.iter().find(|c| c.id == id).unwrap()
    }

    /// R41, R42 (and R30 for imported copies).
    fn visible(&self, u: &User, c: &Case) -> bool {
        let p = self.principals(u);
        if c.org == u.org {
            u.admin
                || c.owner == u.id
                || self.named(c.id, u.org, &p, true)
                || c.imported_from
                    .is_some_and(|origin| self.named(origin, u.org, &p, false))
        } else {
            self.collabs
                .get(&(c.id, u.org))
                .is_some_and(|k| k.live && (u.admin || self.named(c.id, u.org, &p, true)))
        }
    }

    /// `GET /v1/received` for `u`: the case ids of the collaborations it sees.
    fn received(&self, u: &User) -> BTreeSet<String> {
        let p = self.principals(u);
        self.collabs
            .iter()
            .filter(|((_, org), _)| *org == u.org)
            .filter(|((case, org), k)| {
                u.admin
                    || self.rows.iter().any(|r| {
                        r.case == *case
                            && r.org == *org
                            && !r.deleted
                            && (!r.revoked || k.imported.is_some())
                            && p.contains(&r.principal)
                    })
            })
            .map(|((case, _), _)| case.to_string())
            .collect()
    }

    fn revoke(&mut self, share_ids: &[Uuid]) {
        for s in self.shares.iter_mut().filter(|s| share_ids.contains(&s.id)) {
            s.live = false;
        }
        for r in &mut self.rows {
            if matches!(r.cause, Cause::Share(id) if share_ids.contains(&id)) {
                r.revoked = true;
            }
        }
        let live: Vec<(Uuid, usize)> = self
            .shares
            .iter()
            .filter(|s| s.live)
            .filter_map(|s| s.target.map(|t| (s.case, t)))
            .collect();
        let mut ended = Vec::new();
        for (key, k) in self.collabs.iter_mut() {
            if k.live && !live.contains(key) {
                ended.push(*key);
            }
            k.live = k.live && live.contains(key);
        }
        // R51, R57: a collaboration's end ends its onward recipients too; a
        // later share does not bring them back.
        for r in &mut self.rows {
            if r.cause == Cause::Onward && ended.contains(&(r.case, r.org)) {
                r.revoked = true;
            }
        }
    }
}

fn evidence_body(i: usize) -> Value {
    json!({ "title": format!("item {i}"), "notes": ["a note"], "tags": ["a-tag"],
            "gps": { "lat": 52.1, "lon": 4.3 }, "transcript": "words" })
}

// R41–R45, R10: a random world, every user, every read route, every id.
#[tokio::test]
async fn r41_r45_randomized_isolation_every_user_every_route_every_id() {
    let seed: u64 = std::env::var("CASESHARE_ISOLATION_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    eprintln!("isolation seed: {seed} (CASESHARE_ISOLATION_SEED={seed} replays it)");
    let mut rng = StdRng::seed_from_u64(seed);
    let app = spawn_app().await;
    let mut m = build_world(&app, &mut rng).await;
    let mut done = Vec::new();
    for _ in 0..OPS {
        if let Some(op) = random_op(&app, &mut m, &mut rng).await {
            done.push(op);
        }
    }
    app.drain().await;
    let checked = check(&app, &m, seed, &done).await;
    eprintln!(
        "isolation seed {seed}: {} operations ({}), {checked} answers checked, 0 differences",
        done.len(),
        done.join(", ")
    );
    app.stop().await;
}

async fn build_world(app: &TestApp, rng: &mut StdRng) -> Model {
    let mut m = Model {
        users: Vec::new(),
        orgs: Vec::new(),
        groups: Vec::new(),
        members: Vec::new(),
        cases: Vec::new(),
        shares: Vec::new(),
        rows: Vec::new(),
        collabs: HashMap::new(),
    };
    for (i, name) in ["Alpha PD", "Beta PD", "Gamma PD"].iter().enumerate() {
        let org = app.create_org(name, "lea").await;
        app.setup(&org, policy(false), false).await;
        m.users.push(User {
            id: org.admin_id,
            org: i,
            admin: true,
            token: org.admin.clone(),
        });
        m.users.push(User {
            id: org.user_id,
            org: i,
            admin: false,
            token: org.user.clone(),
        });
        for n in 0..2 {
            let (id, token) = app
                .create_user(org.id, &format!("{name} Officer {n}"), "user")
                .await;
            m.users.push(User {
                id,
                org: i,
                admin: false,
                token,
            });
        }
        m.orgs.push(org);
    }
    for i in 0..ORGS {
        for j in (i + 1)..ORGS {
            app.partner(m.orgs[i].id, m.orgs[j].id).await;
        }
        let officers: Vec<Uuid> = m
            .users
            .iter()
            .filter(|u| u.org == i && !u.admin)
            .map(|u| u.id)
            .collect();
        let members: BTreeSet<Uuid> = officers
            .iter()
            .filter(|_| rng.random_bool(0.5))
            .copied()
            .collect();
        let members_vec: Vec<Uuid> = members.iter().copied().collect();
        m.groups
            .push(create_group(app, m.orgs[i].id, "Squad", &members_vec).await);
        m.members.push(members);
    }
    for i in 0..ORGS {
        let to = (i + 1) % ORGS;
        let (_, p) = app
            .post("/v1/policies", &m.orgs[i].admin, policy(true))
            .await;
        let (s, v) = app
            .put(
                &format!("/v1/partners/{}/policy", m.orgs[to].id),
                &m.orgs[i].admin,
                json!({ "policy_id": p["id"] }),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        for n in 0..2 {
            let officers: Vec<&User> = m.users.iter().filter(|u| u.org == i && !u.admin).collect();
            let owner = officers.choose(rng).unwrap();
            let case = app
                .create_case(&owner.token, &format!("case {i}.{n}"))
                .await;
            for e in 0..2 {
                app.add_evidence(&owner.token, case, evidence_body(e)).await;
            }
            m.cases.push(Case {
                id: case,
                org: i,
                owner: owner.id,
                imported_from: None,
                evidence: 2,
            });
        }
    }
    app.drain().await;
    m
}

/// Principals (users and the group) of `org` chosen at random.
fn some_principals(
    m: &Model,
    org: usize,
    rng: &mut StdRng,
    at_least_one: bool,
) -> Vec<(Uuid, bool)> {
    let mut out: Vec<(Uuid, bool)> = m
        .users
        .iter()
        .filter(|u| u.org == org && !u.admin && rng.random_bool(0.4))
        .map(|u| (u.id, false))
        .collect();
    if rng.random_bool(0.4) {
        out.push((m.groups[org], true));
    }
    if out.is_empty() && at_least_one {
        out.push((m.groups[org], true));
    }
    out
}

fn recipients(named: &[(Uuid, bool)]) -> Value {
    Value::Array(
        named
            .iter()
            .map(|(id, group)| {
                if *group {
                    json!({ "group_id": id })
                } else {
                    json!({ "user_id": id })
                }
            })
            .collect(),
    )
}

fn manager_token(m: &Model, case: &Case) -> String {
    // The owner of an origin case, an admin of the org for an imported copy.
    m.users
        .iter()
        .find(|u| u.id == case.owner)
        .map(|u| u.token.clone())
        .unwrap_or_else(|| m.orgs[case.org].admin.clone())
}

async fn random_op(app: &TestApp, m: &mut Model, rng: &mut StdRng) -> Option<String> {
    match rng.random_range(0..9) {
        // Internal share (R14) of any own case, imported copies included.
        0 | 1 => {
            let case = m.cases.choose(rng).unwrap();
            let (id, org) = (case.id, case.org);
            let named = some_principals(m, org, rng, true);
            let token = manager_token(m, case);
            let share = app
                .share_and_settle(
                    &token,
                    id,
                    json!({ "scope": { "kind": "case" },
                    "target": { "kind": "internal", "recipients": recipients(&named) } }),
                )
                .await;
            let share_id: Uuid = share["id"].as_str().unwrap().parse().unwrap();
            m.shares.push(Share {
                id: share_id,
                case: id,
                target: None,
                live: true,
            });
            for (p, _) in named {
                m.rows.push(Row {
                    case: id,
                    org,
                    principal: p,
                    cause: Cause::Share(share_id),
                    revoked: false,
                    deleted: false,
                });
            }
            Some(format!("internal share of {id}"))
        }
        // Partner share (R13, R14) of an origin case, naming random principals.
        2 | 3 => {
            let origins: Vec<&Case> = m
                .cases
                .iter()
                .filter(|c| c.imported_from.is_none())
                .collect();
            let case = *origins.choose(rng).unwrap();
            let (id, org) = (case.id, case.org);
            let to = (org + 1 + rng.random_range(0..ORGS - 1)) % ORGS;
            let named = some_principals(m, to, rng, false);
            let token = manager_token(m, case);
            let share = app
                .share_and_settle(&token, id, json!({ "scope": { "kind": "case" },
                    "target": { "kind": "partner", "org_id": m.orgs[to].id, "recipients": recipients(&named) } }))
                .await;
            let share_id: Uuid = share["id"].as_str().unwrap().parse().unwrap();
            m.shares.push(Share {
                id: share_id,
                case: id,
                target: Some(to),
                live: true,
            });
            for (p, _) in named {
                m.rows.push(Row {
                    case: id,
                    org: to,
                    principal: p,
                    cause: Cause::Share(share_id),
                    revoked: false,
                    deleted: false,
                });
            }
            let received_id: String = sqlx::query_scalar::<_, Uuid>(
                "SELECT id FROM received WHERE case_id = $1 AND receiver_org_id = $2",
            )
            .bind(id)
            .bind(m.orgs[to].id)
            .fetch_one(&app.db)
            .await
            .unwrap()
            .to_string();
            let k = m.collabs.entry((id, to)).or_insert(Collab {
                received_id,
                live: true,
                imported: None,
            });
            k.live = true;
            Some(format!("share of {id} to org {to}"))
        }
        // Revoke one live share (R29).
        4 => {
            let live: Vec<Uuid> = m.shares.iter().filter(|s| s.live).map(|s| s.id).collect();
            let share_id = *live.choose(rng)?;
            let case = m.shares.iter().find(|s| s.id == share_id).unwrap().case;
            let token = m.orgs[m.case(case).org].admin.clone();
            let (s, v) = app
                .post(&format!("/v1/shares/{share_id}/revoke"), &token, json!({}))
                .await;
            assert_eq!(s, StatusCode::ACCEPTED, "{v}");
            m.revoke(&[share_id]);
            Some(format!("revoke {share_id}"))
        }
        // Stop sharing with one principal or one org (R44).
        5 => {
            let candidates: Vec<(Uuid, usize, Uuid)> = m
                .rows
                .iter()
                .filter(|r| !r.deleted && r.principal != m.case(r.case).owner)
                .map(|r| (r.case, r.org, r.principal))
                .collect();
            if rng.random_bool(0.25) {
                let live: Vec<(Uuid, usize)> = m
                    .collabs
                    .iter()
                    .filter(|(_, k)| k.live)
                    .map(|(key, _)| *key)
                    .collect();
                let (case, org) = *live.choose(rng)?;
                let token = m.orgs[m.case(case).org].admin.clone();
                let (s, v) = app
                    .post(
                        &format!("/v1/cases/{case}/access/revoke"),
                        &token,
                        json!({ "kind": "org", "id": m.orgs[org].id }),
                    )
                    .await;
                assert_eq!(s, StatusCode::ACCEPTED, "{v}");
                let ids: Vec<Uuid> = m
                    .shares
                    .iter()
                    .filter(|s| s.live && s.case == case && s.target == Some(org))
                    .map(|s| s.id)
                    .collect();
                m.revoke(&ids);
                return Some(format!("stop sharing {case} with org {org}"));
            }
            let (case, org, principal) = *candidates.choose(rng)?;
            let owner_org = m.case(case).org;
            let kind = if org != owner_org {
                "recipient"
            } else if m.groups.contains(&principal) {
                "group"
            } else {
                "user"
            };
            let token = m.orgs[owner_org].admin.clone();
            let (s, v) = app
                .post(
                    &format!("/v1/cases/{case}/access/revoke"),
                    &token,
                    json!({ "kind": kind, "id": principal }),
                )
                .await;
            assert_eq!(s, StatusCode::ACCEPTED, "{v}");
            for r in &mut m.rows {
                if r.case == case && r.org == org && r.principal == principal {
                    r.deleted = true;
                }
            }
            Some(format!("stop sharing {case} with {kind} {principal}"))
        }
        // Onward addition by the receiver (R28), where the policy allows it.
        6 => {
            let open_live: Vec<(Uuid, usize)> = m
                .collabs
                .iter()
                .filter(|((case, org), k)| k.live && open(m.case(*case).org, *org))
                .map(|(key, _)| *key)
                .collect();
            let (case, org) = *open_live.choose(rng)?;
            let officers: Vec<Uuid> = m
                .users
                .iter()
                .filter(|u| u.org == org && !u.admin)
                .map(|u| u.id)
                .collect();
            let who = *officers.choose(rng).unwrap();
            let (s, v) = app
                .post(
                    &format!("/v1/cases/{case}/recipients"),
                    &m.orgs[org].admin,
                    json!({ "user_id": who }),
                )
                .await;
            assert_eq!(s, StatusCode::CREATED, "{v}");
            // Named again, an onward recipient of an ended collaboration is
            // back (R28); only a re-share alone does not bring it back (R57).
            let existing = m.rows.iter_mut().find(|r| {
                r.case == case
                    && r.org == org
                    && r.principal == who
                    && r.cause == Cause::Onward
                    && !r.deleted
            });
            if let Some(r) = existing {
                r.revoked = false;
            } else {
                m.rows.push(Row {
                    case,
                    org,
                    principal: who,
                    cause: Cause::Onward,
                    revoked: false,
                    deleted: false,
                });
            }
            Some(format!("onward {who} on {case} at org {org}"))
        }
        // Import by the receiver's admin (R19), where the policy allows it.
        7 => {
            let importable: Vec<(Uuid, usize)> = m
                .collabs
                .iter()
                .filter(|((case, org), k)| {
                    k.live && k.imported.is_none() && open(m.case(*case).org, *org)
                })
                .map(|(key, _)| *key)
                .collect();
            let (case, org) = *importable.choose(rng)?;
            let received_id = m.collabs[&(case, org)].received_id.clone();
            let (s, v) = app
                .post(
                    &format!("/v1/received/{received_id}/import"),
                    &m.orgs[org].admin,
                    json!({}),
                )
                .await;
            assert_eq!(s, StatusCode::ACCEPTED, "{v}");
            app.wait_job(v["job_id"].as_str().unwrap().parse().unwrap())
                .await;
            let imported: Uuid = sqlx::query_scalar(
                "SELECT imported_case_id FROM received WHERE id = $1::text::uuid",
            )
            .bind(&received_id)
            .fetch_one(&app.db)
            .await
            .unwrap();
            m.collabs.get_mut(&(case, org)).unwrap().imported = Some(imported);
            let evidence = m.case(case).evidence;
            m.cases.push(Case {
                id: imported,
                org,
                owner: m.orgs[org].admin_id,
                imported_from: Some(case),
                evidence,
            });
            Some(format!("import of {case} at org {org}"))
        }
        // A group membership change (a directory sync), at once (R41).
        _ => {
            let org = rng.random_range(0..ORGS);
            let officers: Vec<Uuid> = m
                .users
                .iter()
                .filter(|u| u.org == org && !u.admin)
                .map(|u| u.id)
                .collect();
            let who = *officers.choose(rng).unwrap();
            let group = m.groups[org];
            if m.members[org].remove(&who) {
                sqlx::query("DELETE FROM group_members WHERE group_id = $1 AND user_id = $2")
                    .bind(group)
                    .bind(who)
                    .execute(&app.db)
                    .await
                    .unwrap();
                Some(format!("{who} leaves group of org {org}"))
            } else {
                sqlx::query(
                    "INSERT INTO group_members (group_id, org_id, user_id) VALUES ($1, $2, $3)",
                )
                .bind(group)
                .bind(m.orgs[org].id)
                .bind(who)
                .execute(&app.db)
                .await
                .unwrap();
                m.members[org].insert(who);
                Some(format!("{who} joins group of org {org}"))
            }
        }
    }
}

fn ids(v: &Value, key: &str) -> BTreeSet<String> {
    v["items"]
        .as_array()
        .unwrap_or(&Vec::new())
        .iter()
        .map(|i| i[key].as_str().unwrap_or_default().to_string())
        .collect()
}

const EVIDENCE_TERMS: [&str; 4] = ["notes", "tags", "gps", "transcript"];

/// Every user, every read route, every case id: compare with the oracle.
async fn check(app: &TestApp, m: &Model, seed: u64, done: &[String]) -> usize {
    let mut differences = Vec::new();
    let mut checked = 0;
    for u in &m.users {
        let ctx = |what: &str| {
            format!(
                "seed {seed}, user {} (org {}, admin {}): {what}",
                u.id, u.org, u.admin
            )
        };
        // The lists.
        let expected: BTreeSet<String> = m
            .cases
            .iter()
            .filter(|c| m.visible(u, c))
            .filter(|c| {
                c.org == u.org
                    || m.collabs
                        .get(&(c.id, u.org))
                        .is_some_and(|k| k.imported.is_none())
            })
            .map(|c| c.id.to_string())
            .collect();
        let (_, v) = app.get("/v1/cases", &u.token).await;
        checked += 1;
        if ids(&v, "id") != expected {
            differences.push(ctx(&format!(
                "GET /v1/cases: {:?}, expected {expected:?}",
                ids(&v, "id")
            )));
        }
        let (_, v) = app.get("/v1/received", &u.token).await;
        checked += 1;
        let expected = m.received(u);
        if ids(&v, "case_id") != expected {
            differences.push(ctx(&format!(
                "GET /v1/received: {:?}, expected {expected:?}",
                ids(&v, "case_id")
            )));
        }
        for c in &m.cases {
            let visible = m.visible(u, c);
            let own = c.org == u.org;
            for (route, expect_ok) in [
                ("", visible),
                ("/evidence", visible),
                ("/folders", visible),
                ("/audit", visible),
                ("/shares", visible && own),
                ("/access", visible && own),
                ("/dissemination", visible && own),
                ("/link-shares", visible && own),
                (
                    "/import-details",
                    visible && (!own || c.imported_from.is_some()),
                ),
            ] {
                let path = format!("/v1/cases/{}{route}", c.id);
                let (s, v) = app.get(&path, &u.token).await;
                checked += 1;
                let expected = if expect_ok {
                    StatusCode::OK
                } else {
                    StatusCode::NOT_FOUND
                };
                if s != expected {
                    differences.push(ctx(&format!("GET {path}: {s}, expected {expected} ({v})")));
                    continue;
                }
                if !expect_ok {
                    if v["error"] != "not_found" {
                        differences.push(ctx(&format!(
                            "GET {path}: body {v} is not the not_found shape"
                        )));
                    }
                    continue;
                }
                // R10, R43: what a visible external item shows.
                if !own {
                    let allowed = open(c.org, u.org);
                    match route {
                        "" => {
                            for term in ["notes", "tags"] {
                                if v.get(term).is_some() != allowed {
                                    differences.push(ctx(&format!("GET {path}: case {term} shown = {}, policy allows = {allowed}", v.get(term).is_some())));
                                }
                            }
                        }
                        "/evidence" => {
                            let items = v["items"].as_array().unwrap();
                            if items.len() != c.evidence {
                                differences.push(ctx(&format!(
                                    "GET {path}: {} items, expected {}",
                                    items.len(),
                                    c.evidence
                                )));
                            }
                            for item in items {
                                for term in EVIDENCE_TERMS {
                                    if item.get(term).is_some() != allowed {
                                        differences.push(ctx(&format!("GET {path}: evidence {term} shown = {}, policy allows = {allowed}", item.get(term).is_some())));
                                    }
                                }
                            }
                        }
                        _ => {}
                    }
                }
            }
        }
    }
    assert!(
        differences.is_empty(),
        "{} differences from the oracle (seed {seed}; operations: {}):\n{}",
        differences.len(),
        done.join(", "),
        differences.join("\n")
    );
    checked
}
