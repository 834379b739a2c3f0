//! Upstream publishers bound to orgs (R38, issue 19): an evidence event names
//! the org it acts for, so without a binding any account that may write to
//! the events exchange could add evidence to another org's case whose id it
//! knows. A publisher sets the AMQP `user_id` property, which RabbitMQ
//! checks against the user of the connection (a message claiming another
//! user is refused by the broker), and `event_publishers` maps each such
//! user to the orgs it may publish for (`user=org_id`, one entry per pair).
//! With no binding configured events are accepted from any publisher,
//! except in production mode, where they are refused.

use std::collections::{BTreeMap, BTreeSet};
use uuid::Uuid;

#[derive(Debug, Clone, Default)]
pub struct PublisherBindings {
    orgs: BTreeMap<String, BTreeSet<Uuid>>,
    /// Refuse events that no binding admits even when none is configured.
    required: bool,
}

impl PublisherBindings {
    /// Parse `user=org_id` entries.
    pub fn parse(entries: &[String], production: bool) -> Result<Self, String> {
        let mut orgs: BTreeMap<String, BTreeSet<Uuid>> = BTreeMap::new();
        for entry in entries {
            let (user, org) = entry
                .split_once('=')
                .map(|(u, o)| (u.trim(), o.trim()))
                .filter(|(u, _)| !u.is_empty())
                .ok_or_else(|| format!("{entry:?} is not user=org_id"))?;
            let org = org
                .parse::<Uuid>()
                .map_err(|_| format!("{entry:?}: {org:?} is not an org id"))?;
            orgs.entry(user.to_string()).or_default().insert(org);
        }
        Ok(PublisherBindings {
            orgs,
            required: production,
        })
    }

    /// Whether any publisher is bound.
    pub fn is_configured(&self) -> bool {
        !self.orgs.is_empty()
    }

    /// May an event from AMQP user `user_id` (as RabbitMQ verified it) act
    /// for `org`? The reason is the dead letter's.
    pub fn admits(&self, user_id: Option<&str>, org: Uuid) -> Result<(), String> {
        if self.orgs.is_empty() && !self.required {
            return Ok(());
        }
        let user = user_id.ok_or(
            "the event has no AMQP user_id: upstream publishers are bound to orgs (CASESHARE_EVENT_PUBLISHERS)",
        )?;
        match self.orgs.get(user) {
            Some(orgs) if orgs.contains(&org) => Ok(()),
            Some(_) => Err(format!("publisher {user:?} may not publish for org {org}")),
            None => Err(format!("publisher {user:?} is bound to no org")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bindings_admit_their_orgs_alone() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let entries = [
            format!("rms={a}"),
            format!(" rms = {b}"),
            format!("cad={b}"),
        ];
        let bound = PublisherBindings::parse(&entries, false).unwrap();
        assert!(bound.admits(Some("rms"), a).is_ok());
        assert!(bound.admits(Some("rms"), b).is_ok());
        assert!(bound.admits(Some("cad"), a).is_err());
        assert!(bound.admits(Some("other"), a).is_err());
        assert!(bound.admits(None, a).is_err());
        // Nothing configured: any publisher outside production, none in it.
        assert!(PublisherBindings::parse(&[], false)
            .unwrap()
            .admits(None, a)
            .is_ok());
        assert!(PublisherBindings::parse(&[], true)
            .unwrap()
            .admits(Some("rms"), a)
            .is_err());
        assert!(PublisherBindings::parse(&["rms".into()], false).is_err());
        assert!(PublisherBindings::parse(&["rms=x".into()], false).is_err());
        assert!(PublisherBindings::parse(&["=x".into()], false).is_err());
    }
}
