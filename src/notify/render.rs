//! Email templates (R32, R33, R40): a notice becomes a subject and text and
//! HTML bodies. Only ids, names, the case title, the sharer's message and the
//! View or download link are read, so no field a policy excludes can appear
//! in an email (R10); values are HTML-escaped in the HTML part.

use sqlx::PgConnection;
use uuid::Uuid;

use super::NoticeKind;
use crate::context::JobContext;
use crate::jobs::JobError;

/// A claimed notice: what rendering and sending it need.
#[derive(sqlx::FromRow)]
pub(super) struct NoticeRow {
    pub(super) kind: NoticeKind,
    pub(super) recipient: String,
    pub(super) message_id: String,
    pub(super) share_id: Option<Uuid>,
    pub(super) link_share_id: Option<Uuid>,
}

pub(super) struct Rendered {
    pub(super) subject: String,
    pub(super) text: String,
    pub(super) html: String,
}

const TEMPLATES: &[(&str, &str, &str)] = &[
    (
        "share",
        include_str!("../../templates/share.txt"),
        include_str!("../../templates/share.html"),
    ),
    (
        "revoke",
        include_str!("../../templates/revoke.txt"),
        include_str!("../../templates/revoke.html"),
    ),
    (
        "link_share",
        include_str!("../../templates/link_share.txt"),
        include_str!("../../templates/link_share.html"),
    ),
    (
        "link_share_reminder",
        include_str!("../../templates/link_share_reminder.txt"),
        include_str!("../../templates/link_share_reminder.html"),
    ),
    (
        "internal_share",
        include_str!("../../templates/internal_share.txt"),
        include_str!("../../templates/internal_share.html"),
    ),
];

pub(super) async fn render(
    db: &mut PgConnection,
    ctx: &JobContext,
    n: &NoticeRow,
) -> Result<Rendered, JobError> {
    // Exhaustive: a new kind is a compile error here until it has a template.
    let (template, subject): (&str, fn(&CaseNames) -> String) = match n.kind {
        NoticeKind::LinkShare => return render_link_share(db, ctx, n, false).await,
        NoticeKind::LinkShareReminder => return render_link_share(db, ctx, n, true).await,
        NoticeKind::Share => ("share", |c| {
            format!("{} shared a case with you: {}", c.sharing_org, c.case_title)
        }),
        NoticeKind::Revoke => ("revoke", |c| {
            format!("{} revoked a shared case: {}", c.sharing_org, c.case_title)
        }),
        NoticeKind::AccessRevoked => ("revoke", |c| {
            format!(
                "{} stopped sharing a case with you: {}",
                c.sharing_org, c.case_title
            )
        }),
        NoticeKind::RecipientRemoved => ("revoke", |c| {
            format!(
                "{} removed your access to a case shared by {}: {}",
                c.receiving_org, c.sharing_org, c.case_title
            )
        }),
        NoticeKind::InternalShare | NoticeKind::OnwardShare => ("internal_share", |c| {
            format!("A case was shared with you: {}", c.case_title)
        }),
    };
    // Only ids, names and the case title are read: nothing else can leak (R10).
    // The case as the recipient sees it: the partner's imported copy once
    // there is one, else the shared case (external, or the org's own).
    let (case_id, case_title, sharing_org, receiving_org, message): (
        Uuid,
        String,
        String,
        Option<String>,
        Option<String>,
    ) = sqlx::query_as(
        "SELECT coalesce(r.imported_case_id, c.id), c.title, so.name, ro.name, s.message
             FROM shares s JOIN cases c ON c.id = s.case_id JOIN orgs so ON so.id = s.org_id
             LEFT JOIN orgs ro ON ro.id = s.target_org_id
             LEFT JOIN received r ON r.case_id = s.case_id AND r.receiver_org_id = s.target_org_id
             WHERE s.id = $1",
    )
    .bind(n.share_id)
    .fetch_one(db)
    .await?;
    let receiving_org = receiving_org.unwrap_or_else(|| sharing_org.clone());
    let view_url = ctx
        .settings
        .case_url
        .replace(
            "{public_url}",
            ctx.settings.public_url.trim_end_matches('/'),
        )
        .replace("{case_id}", &case_id.to_string());
    let subject = subject(&CaseNames {
        sharing_org: &sharing_org,
        receiving_org: &receiving_org,
        case_title: &case_title,
    });
    let vars = [
        ("sharing_org", sharing_org),
        ("receiving_org", receiving_org),
        ("case_title", case_title),
        ("view_url", view_url),
    ];
    fill_template(template, subject, &vars, message.as_deref())
}

/// What a case notice's subject names.
struct CaseNames<'a> {
    sharing_org: &'a str,
    receiving_org: &'a str,
    case_title: &'a str,
}

/// The email templates, text and HTML parts (`templating`: the HTML part
/// escapes every value).
static EMAILS: std::sync::LazyLock<minijinja::Environment<'static>> =
    std::sync::LazyLock::new(|| {
        let mut env = crate::templating::environment();
        for (name, text, html) in TEMPLATES {
            env.add_template_owned(format!("{name}.txt"), *text)
                .expect("an email template parses");
            env.add_template_owned(format!("{name}.html"), *html)
                .expect("an email template parses");
        }
        env
    });

/// Render a template's text and HTML parts with `vars` and the optional
/// message (blank: none).
fn fill_template(
    template: &str,
    subject: String,
    vars: &[(&str, String)],
    message: Option<&str>,
) -> Result<Rendered, JobError> {
    let name = TEMPLATES
        .iter()
        .find(|(name, _, _)| *name == template)
        .map_or(TEMPLATES[0].0, |t| t.0);
    let message = message.filter(|m| !m.trim().is_empty());
    let mut context: std::collections::BTreeMap<&str, minijinja::Value> = vars
        .iter()
        .map(|(k, v)| (*k, minijinja::Value::from(v.as_str())))
        .collect();
    context.insert("message", minijinja::Value::from(message));
    let render = |part: &str| {
        EMAILS
            .get_template(&format!("{name}.{part}"))
            .and_then(|t| t.render(&context))
            .map_err(|e| JobError::permanent(format!("rendering the {name} email: {e}")))
    };
    Ok(Rendered {
        subject,
        text: render("txt")?,
        html: render("html")?,
    })
}

#[derive(sqlx::FromRow)]
struct LinkNoticeRow {
    id: Uuid,
    case_title: String,
    sharing_org: String,
    message: Option<String>,
    token_derived: bool,
    expires_at: Option<chrono::DateTime<chrono::Utc>>,
    manifest: Option<String>,
}

/// The link-share email: who sends, which case, the link, its expiry and the
/// manifest's hash (so the recipient can check what was downloaded).
async fn render_link_share(
    db: &mut PgConnection,
    ctx: &JobContext,
    n: &NoticeRow,
    reminder: bool,
) -> Result<Rendered, JobError> {
    let LinkNoticeRow { id, case_title, sharing_org, message, token_derived, expires_at, manifest } = sqlx::query_as(
        "SELECT l.id, c.title AS case_title, o.name AS sharing_org, l.message, l.token_derived, l.expires_at,
                l.manifest_sha256 AS manifest
         FROM link_shares l JOIN cases c ON c.id = l.case_id JOIN orgs o ON o.id = l.org_id WHERE l.id = $1",
    )
    .bind(n.link_share_id)
    .fetch_one(db)
    .await?;
    // A link made before tokens were derived cannot be recomputed: its
    // reminder points at the first email.
    // The landing page, not the raw package: the recipient sees who sent
    // what before a multi-gigabyte download starts.
    let download_url = if token_derived {
        crate::linktoken::page_url(&ctx.settings, id)
    } else {
        "(the download link in the first email about this package)".to_string()
    };
    let expires = expires_at
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default();
    let manifest = manifest.unwrap_or_default();
    let subject = if reminder {
        format!("Reminder: the case package {case_title} from {sharing_org} expires on {expires}")
    } else {
        format!("{sharing_org} sent you a case package: {case_title}")
    };
    let vars = [
        ("sharing_org", sharing_org),
        ("case_title", case_title),
        ("download_url", download_url),
        ("expires_at", expires),
        ("manifest_sha256", manifest),
    ];
    fill_template(
        if reminder {
            "link_share_reminder"
        } else {
            "link_share"
        },
        subject,
        &vars,
        message.as_deref(),
    )
}

#[cfg(test)]
mod tests {
    use super::{fill_template, TEMPLATES};

    // A value is never read as a template, and HTML parts escape it.
    #[test]
    fn values_stay_values_and_html_parts_escape_them() {
        let vars = [
            ("sharing_org", "Alpha <PD>".to_string()),
            ("receiving_org", "Beta PD".to_string()),
            ("case_title", "{{ view_url }}".to_string()),
            ("view_url", "https://x.example/cases/1".to_string()),
        ];
        let out = fill_template("share", "s".into(), &vars, Some("see <this>")).unwrap();
        assert!(out.text.contains("Case: {{ view_url }}"), "{}", out.text);
        assert!(
            out.text.contains("\nMessage:\nsee <this>\n"),
            "{}",
            out.text
        );
        assert!(out.html.contains("Alpha &lt;PD&gt;"), "{}", out.html);
        assert!(out.html.contains("see &lt;this&gt;"), "{}", out.html);
        assert!(
            out.html.contains("href=\"https://x.example/cases/1\""),
            "{}",
            out.html
        );
        let none = fill_template("share", "s".into(), &vars, Some("  ")).unwrap();
        assert!(!none.text.contains("Message:"));
        assert!(
            fill_template("share", "s".into(), &vars[..2], None).is_err(),
            "a name with no value"
        );
    }

    #[test]
    fn every_template_fills_with_its_variables() {
        let vars: Vec<(&str, String)> = [
            "sharing_org",
            "receiving_org",
            "case_title",
            "view_url",
            "download_url",
            "expires_at",
            "manifest_sha256",
        ]
        .iter()
        .map(|k| (*k, format!("<{k}>")))
        .collect();
        for (name, _, _) in TEMPLATES {
            assert!(
                fill_template(name, "s".into(), &vars, Some("m")).is_ok(),
                "{name}"
            );
        }
    }
}
