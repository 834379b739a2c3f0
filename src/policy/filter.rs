//! The one filter (R6–R11, R10): what of a case or an evidence item leaves the
//! owner's org under a policy. Every outbound path calls these functions; none
//! builds receiver data by itself.
//!
//! Always kept (R6): ids, titles, descriptions, categories (as tags), dates,
//! EXIF, content hash and size. Everything else only when the policy says so.
//! Excluded fields are absent from the output, not null or empty.

use super::Policy;
use crate::cases::CaseData;
use crate::cases::EvidenceData;

/// Placeholder a receiver gets for a caption the sharer redacted (R11).
pub const REDACTED_CAPTION: &str = "[redacted by the sharing agency]";

/// Filter one evidence item for a receiver. `caption_redacted` is the sharer's
/// per-share choice (R11).
pub fn evidence(policy: &Policy, data: &EvidenceData, caption_redacted: bool) -> EvidenceData {
    let terms = &policy.evidence_terms;
    let mut out = data.clone();
    if !terms.clips_markers {
        out.clips = None;
        out.markers = None;
    }
    if !terms.evidence_notes {
        out.notes = None;
    }
    if !terms.gps {
        out.gps = None;
    }
    if !terms.custom_metadata {
        out.custom_metadata = None;
    }
    if !terms.device_metadata {
        out.device_metadata = None;
    }
    if !terms.transcript {
        out.transcript = None;
    }
    if let Some(request) = out.community_request.as_mut() {
        if !terms.community_request_pii {
            request.pii = None;
        }
        if caption_redacted && request.caption.is_some() {
            request.caption = Some(REDACTED_CAPTION.to_string());
        }
    }
    // R6: categories reach the receiver as tags (merged with the evidence's
    // own tags when those are included).
    let mut tags: Vec<String> = out.categories.take().unwrap_or_default();
    if terms.evidence_tags {
        for t in data.tags.iter().flatten() {
            if !tags.contains(t) {
                tags.push(t.clone());
            }
        }
    }
    out.tags = if tags.is_empty() { None } else { Some(tags) };
    // Without copy_download there is no way to fetch the bytes (R7).
    if !policy.permissions.copy_download {
        if let Some(content) = out.content.as_mut() {
            content.uri = None;
        }
    }
    out
}

/// Filter the case-level fields for a receiver (R8).
pub fn case(policy: &Policy, data: &CaseData) -> CaseData {
    let mut out = data.clone();
    if !policy.case_terms.case_notes {
        out.notes = None;
    }
    if !policy.case_terms.case_tags {
        out.tags = None;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cases::{CommunityRequest, Content, Gps, Pii};
    use crate::policy::{CaseTerms, EvidenceTerms, Permissions};
    use proptest::prelude::*;

    fn policy_from(bits: u16) -> Policy {
        let b = |i: u16| bits & (1 << i) != 0;
        Policy {
            name: "p".into(),
            permissions: Permissions {
                copy_download: b(0),
                sender_audit_trail: b(1),
                internal_share: b(2),
            },
            case_terms: CaseTerms {
                case_notes: b(3),
                case_tags: b(4),
            },
            evidence_terms: EvidenceTerms {
                clips_markers: b(5),
                evidence_notes: b(6),
                evidence_tags: b(7),
                gps: b(8),
                custom_metadata: b(9),
                device_metadata: b(10),
                community_request_pii: b(11),
                transcript: b(12),
            },
        }
    }

    /// Each optional field holds a value that appears nowhere else, so its
    /// presence in the serialized output proves it leaked.
    fn evidence_with_markers(seed: u32) -> EvidenceData {
        let m = |name: &str| format!("{name}-secret-{seed}");
        EvidenceData {
            title: format!("title-{seed}"),
            description: Some(format!("desc-{seed}")),
            categories: Some(vec![format!("cat-{seed}")]),
            recorded_at: None,
            exif: Some(serde_json::json!({ "iso": seed })),
            clips: Some(vec![serde_json::json!({ "clip": m("clip") })]),
            markers: Some(vec![serde_json::json!({ "marker": m("marker") })]),
            notes: Some(vec![m("enote")]),
            tags: Some(vec![m("etag")]),
            gps: Some(Gps {
                lat: 12.345 + seed as f64,
                lon: 67.891,
            }),
            custom_metadata: Some(
                serde_json::json!({ "k": m("custom") })
                    .as_object()
                    .unwrap()
                    .clone(),
            ),
            device_metadata: Some(
                serde_json::json!({ "k": m("device") })
                    .as_object()
                    .unwrap()
                    .clone(),
            ),
            community_request: Some(CommunityRequest {
                caption: Some(m("caption")),
                pii: Some(Pii {
                    name: Some(m("piiname")),
                    date_of_birth: Some(m("piidob")),
                    email: Some(m("piiemail")),
                    phone: Some(m("piiphone")),
                }),
            }),
            transcript: Some(m("transcript")),
            content: Some(Content {
                sha256: Some("ab".repeat(32)),
                size_bytes: Some(10),
                uri: Some(m("uri")),
                content_type: Some("video/mp4".into()),
            }),
        }
    }

    proptest! {
        // R10, R6–R9, R11: for every policy (all 13 switches) and evidence, the
        // receiver's view holds exactly the allowed fields; no excluded value
        // appears anywhere in the serialized output.
        #[test]
        fn r10_excluded_fields_never_leave(bits in 0u16..(1 << 13), seed in 0u32..1000, redact in any::<bool>()) {
            let policy = policy_from(bits);
            let input = evidence_with_markers(seed);
            let out = evidence(&policy, &input, redact);
            let json = serde_json::to_value(&out).unwrap();
            let text = json.to_string();
            let t = &policy.evidence_terms;
            let expect = |marker: &str, allowed: bool| {
                let needle = format!("{marker}-secret-{seed}\"");
                prop_assert_eq!(text.contains(&needle), allowed, "{} allowed={} in {}", marker, allowed, text);
                Ok(())
            };
            expect("clip", t.clips_markers)?;
            expect("marker", t.clips_markers)?;
            expect("enote", t.evidence_notes)?;
            expect("etag", t.evidence_tags)?;
            expect("custom", t.custom_metadata)?;
            expect("device", t.device_metadata)?;
            expect("piiname", t.community_request_pii)?;
            expect("piidob", t.community_request_pii)?;
            expect("piiemail", t.community_request_pii)?;
            expect("piiphone", t.community_request_pii)?;
            expect("transcript", t.transcript)?;
            expect("caption", !redact)?;
            expect("uri", policy.permissions.copy_download)?;
            prop_assert_eq!(json.get("gps").is_some(), t.gps);
            // Absent, not null.
            for key in ["clips", "markers", "notes", "gps", "custom_metadata", "device_metadata", "transcript", "categories"] {
                prop_assert!(json.get(key) != Some(&serde_json::Value::Null), "{} is null", key);
            }
            // R6: always included, categories arrive as tags.
            prop_assert!(json.get("categories").is_none());
            let tags = json["tags"].as_array().unwrap();
            let category = format!("cat-{}", seed);
            prop_assert!(tags.contains(&serde_json::json!(category)));
            prop_assert_eq!(&json["title"], &serde_json::json!(format!("title-{seed}")));
            prop_assert_eq!(&json["description"], &serde_json::json!(format!("desc-{seed}")));
            prop_assert_eq!(&json["exif"], &serde_json::json!({ "iso": seed }));
            prop_assert!(json["content"]["sha256"].is_string());
        }

        // R8: case notes and tags only when the case terms include them.
        #[test]
        fn r8_case_terms_filter_notes_and_tags(bits in 0u16..(1 << 13)) {
            let policy = policy_from(bits);
            let data = CaseData {
                case_number: "C-1".into(),
                title: "t".into(),
                description: Some("d".into()),
                notes: Some(vec!["case-note-secret".into()]),
                tags: Some(vec!["case-tag-secret".into()]),
            };
            let text = serde_json::to_string(&case(&policy, &data)).unwrap();
            prop_assert_eq!(text.contains("case-note-secret"), policy.case_terms.case_notes);
            prop_assert_eq!(text.contains("case-tag-secret"), policy.case_terms.case_tags);
            prop_assert!(text.contains("\"title\":\"t\""));
        }
    }
}
