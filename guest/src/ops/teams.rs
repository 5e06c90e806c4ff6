//! Teams as operators see them (the CLI's `team` commands, the admin API): a flat record
//! instead of the SCIM Group document.

use serde_json::Value;

use crate::model::error::ScimResult;
use crate::ops::service::Service;

/// A team: its SCIM id, `displayName`, whether an IdP group is linked to it, its member count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Team {
    /// The SCIM Group id.
    pub id: String,
    /// The team's name (the group's `displayName`).
    pub name: String,
    /// Whether an identity provider manages the team (it was created or linked via SCIM).
    pub linked: bool,
    /// How many users belong to the team.
    pub members: u64,
}

fn text(doc: &Value, key: &str) -> String {
    doc.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// Creates a team, not linked to any IdP group until one is pushed with the same name.
pub fn create(svc: &Service<'_>, name: &str) -> ScimResult<Team> {
    let doc = svc.create_team(name)?;
    Ok(Team {
        id: text(&doc, "id"),
        name: text(&doc, "displayName"),
        linked: false,
        members: 0,
    })
}

/// Every team of the tenant, ordered by id (the store's key order under one prefix).
pub fn list(svc: &Service<'_>) -> ScimResult<Vec<Team>> {
    Ok(svc
        .teams()?
        .into_iter()
        .map(|(doc, linked, members)| Team {
            id: text(&doc, "id"),
            name: text(&doc, "displayName"),
            linked,
            members,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::resource_type::Kind;
    use crate::persist::store::MemStore;
    use serde_json::json;

    #[test]
    fn created_teams_are_listed_by_id_with_link_state_and_members() {
        let store = MemStore::new();
        // No default team, so that only the teams made here exist.
        let policy = r#"{"profile":"writer","default-team":null}"#;
        let svc = Service::new(&store, "", policy).unwrap();
        let sales = create(&svc, "Sales").unwrap();
        assert_eq!(
            (sales.name.as_str(), sales.linked, sales.members),
            ("Sales", false, 0)
        );
        let ops = create(&svc, "Ops").unwrap();
        // An IdP pushing a group of the same name links the team (writer: link-only).
        let proj = svc.projection(None, None).unwrap();
        let user = svc
            .create(Kind::User, &json!({"userName": "ada@x.com"}), &proj)
            .unwrap();
        svc.create(
            Kind::Group,
            &json!({"displayName": "Ops", "members": [{"value": user["id"]}]}),
            &proj,
        )
        .unwrap();
        let teams = list(&svc).unwrap();
        let mut ids = vec![sales.id.clone(), ops.id.clone()];
        ids.sort();
        assert_eq!(teams.iter().map(|t| t.id.clone()).collect::<Vec<_>>(), ids);
        let ops = teams.iter().find(|t| t.name == "Ops").unwrap();
        assert!(ops.linked);
        assert_eq!(ops.members, 1);
        let sales = teams.iter().find(|t| t.name == "Sales").unwrap();
        assert_eq!((sales.linked, sales.members), (false, 0));
    }

    #[test]
    fn duplicate_and_invalid_names_are_scim_errors() {
        let store = MemStore::new();
        let svc = Service::new(&store, "", "").unwrap();
        create(&svc, "Sales").unwrap();
        let dup = create(&svc, "sales").unwrap_err();
        assert_eq!(dup.status, 409, "{dup}");
        let bad = create(&svc, "").unwrap_err();
        assert_eq!(bad.status, 400, "{bad}");
    }
}
