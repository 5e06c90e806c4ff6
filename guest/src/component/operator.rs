//! The `operator` export: what the CLI and the admin API need from SCIM semantics. Each
//! function maps WIT types onto the plain-Rust modules that hold the rules.

use super::bindings::exports::scimlet::scim::operator;
use super::bindings::scimlet::scim::types;
use super::{host_store, service, wit_error, Component};
use crate::model::policy::{profile_names, Policy};
use crate::ops::import::Outcome;
use crate::protocol::host_failure::HostFailure;

fn team(t: crate::ops::teams::Team) -> operator::Team {
    operator::Team {
        id: t.id,
        name: t.name,
        linked: t.linked,
        members: t.members,
    }
}

fn outcome(o: Outcome) -> operator::RowOutcome {
    match o {
        Outcome::Created => operator::RowOutcome::Created,
        Outcome::Updated => operator::RowOutcome::Updated,
        Outcome::Unchanged => operator::RowOutcome::Unchanged,
        Outcome::Failed(why) => operator::RowOutcome::Failed(why),
    }
}

fn failure(f: operator::HostFailure) -> HostFailure {
    use operator::HostFailure as W;
    match f {
        W::NotAnEndpoint => HostFailure::NotAnEndpoint,
        W::MissingToken => HostFailure::MissingToken,
        W::InvalidToken => HostFailure::InvalidToken,
        W::PayloadTooLarge(limit) => HostFailure::PayloadTooLarge(limit),
        W::BodyTimeout => HostFailure::BodyTimeout,
        W::UnreadableBody => HostFailure::UnreadableBody,
        W::RateLimited => HostFailure::RateLimited,
        W::AtCapacity => HostFailure::AtCapacity,
        W::TimedOut => HostFailure::TimedOut,
        W::StorageUnavailable => HostFailure::StorageUnavailable,
        W::ComponentTimeout => HostFailure::ComponentTimeout,
        W::ComponentOutOfMemory => HostFailure::ComponentOutOfMemory,
        W::ComponentFailed => HostFailure::ComponentFailed,
    }
}

impl operator::Guest for Component {
    fn effective_policy(policy: String) -> Result<String, types::ScimError> {
        Policy::effective_json(&policy).map_err(wit_error)
    }

    fn profiles() -> Vec<String> {
        profile_names().into_iter().map(String::from).collect()
    }

    fn create_team(ctx: types::Context, name: String) -> Result<operator::Team, types::ScimError> {
        #[cfg(feature = "fault-injection")]
        crate::fault::maybe_fail_operator(&ctx.policy);
        crate::ops::teams::create(&service(&ctx)?, &name)
            .map(team)
            .map_err(wit_error)
    }

    fn list_teams(ctx: types::Context) -> Result<Vec<operator::Team>, types::ScimError> {
        #[cfg(feature = "fault-injection")]
        crate::fault::maybe_fail_operator(&ctx.policy);
        let teams = crate::ops::teams::list(&service(&ctx)?).map_err(wit_error)?;
        Ok(teams.into_iter().map(team).collect())
    }

    fn import_rows(
        ctx: types::Context,
        rows: Vec<String>,
    ) -> Result<Vec<operator::RowOutcome>, types::ScimError> {
        #[cfg(feature = "fault-injection")]
        crate::fault::maybe_fail_operator(&ctx.policy);
        let outcomes = service(&ctx)?.import_texts(&rows).map_err(wit_error)?;
        Ok(outcomes.into_iter().map(outcome).collect())
    }

    fn export_rows(
        ctx: types::Context,
        cursor: Option<String>,
        limit: u32,
    ) -> Result<operator::ExportPage, types::ScimError> {
        #[cfg(feature = "fault-injection")]
        crate::fault::maybe_fail_operator(&ctx.policy);
        let page = service(&ctx)?
            .export_page(cursor.as_deref(), limit)
            .map_err(wit_error)?;
        Ok(operator::ExportPage {
            rows: page.rows.iter().map(|r| r.to_json().to_string()).collect(),
            next: page.next,
        })
    }

    fn check(ctx: types::Context) -> Vec<String> {
        #[cfg(feature = "fault-injection")]
        crate::fault::maybe_fail_operator(&ctx.policy);
        crate::ops::check::report(host_store(), &ctx.policy)
    }

    fn render_error(f: operator::HostFailure) -> types::SimpleResponse {
        let r = failure(f).response();
        types::SimpleResponse {
            status: r.status,
            headers: r.headers,
            body: r.body,
        }
    }
}
