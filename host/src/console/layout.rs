//! The page shell (header, breadcrumbs, footer) and the small pieces every page uses.

use maud::{html, Markup, DOCTYPE};

/// Where a page's stylesheet and script are served: the admin listener's or the SCIM
/// listener's (setup pages).
#[derive(Clone, Copy)]
pub(super) enum Assets {
    Console,
    Setup,
}

impl Assets {
    fn prefix(self) -> &'static str {
        match self {
            Assets::Console => "/assets",
            Assets::Setup => "/setup-assets",
        }
    }
}

/// What the header shows.
pub(super) struct Shell<'a> {
    pub title: &'a str,
    /// Breadcrumbs after the product name: (label, link).
    pub crumbs: Vec<(String, Option<String>)>,
    /// The session's CSRF token when signed in (the header then has "Sign out").
    pub csrf: Option<&'a str>,
    pub assets: Assets,
}

/// A complete page.
pub(super) fn page(shell: &Shell, body: Markup) -> Markup {
    let prefix = shell.assets.prefix();
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="same-origin";
                title { (shell.title) " · scimlet" }
                link rel="icon" href={ (prefix) "/icon.svg" } type="image/svg+xml";
                link rel="stylesheet" href={ (prefix) "/console.css" };
                script src={ (prefix) "/copy.js" } defer {}
            }
            body {
                header.top {
                    div.bar {
                        @match shell.assets {
                            Assets::Console => a.brand href="/" { span.logo {} "scimlet" },
                            Assets::Setup => span.brand { span.logo {} "SCIM provisioning" },
                        }
                        div.crumbs {
                            @for (i, (label, link)) in shell.crumbs.iter().enumerate() {
                                @if i > 0 { " / " }
                                @match link {
                                    Some(href) => a href=(href) { (label) },
                                    None => span { (label) },
                                }
                            }
                        }
                        @if let Some(csrf) = shell.csrf {
                            form method="post" action="/sign-out" {
                                (csrf_field(csrf))
                                button.link type="submit" { "Sign out" }
                            }
                        }
                    }
                }
                main { (body) }
                footer { "scimlet · SCIM 2.0 provisioning" }
            }
        }
    }
}

/// A page with one message (errors, refusals).
pub(super) fn message_page(title: &str, text: &str, signed_in: bool) -> Markup {
    let shell = Shell {
        title,
        crumbs: if signed_in {
            vec![("Tenants".into(), Some("/".into()))]
        } else {
            Vec::new()
        },
        csrf: None,
        assets: Assets::Console,
    };
    page(
        &shell,
        html! {
            div.card {
                h1 { (title) }
                p { (text) }
                p { a href="/" { "Back to the console" } }
            }
        },
    )
}

/// The hidden CSRF field of a form.
pub(super) fn csrf_field(csrf: &str) -> Markup {
    html! { input type="hidden" name="csrf" value=(csrf); }
}

/// A read-only field named `label` (for assistive technology) with a copy button.
pub(super) fn copy_field(id: &str, label: &str, value: &str) -> Markup {
    copy_row(id, Some(label), value)
}

fn copy_row(id: &str, aria_label: Option<&str>, value: &str) -> Markup {
    html! {
        div.copyrow {
            input type="text" id=(id) name=(id) readonly value=(value) aria-label=[aria_label];
            button.copy.secondary type="button" data-copy=(id) title="Copy to the clipboard" { "Copy" }
        }
    }
}

/// A secret shown once: a labelled read-only field with a copy button, and what to do with it.
pub(super) fn shown_once(id: &str, label: &str, value: &str, hint: &str) -> Markup {
    html! {
        div.notice.new {
            label for=(id) { (label) }
            (copy_row(id, None, value))
            p.hint { (hint) }
        }
    }
}

/// `2026-11-03 14:02 UTC`.
pub(super) fn when(unix: i64) -> String {
    let text = crate::tenancy::rfc3339(unix);
    format!("{} {} UTC", &text[..10], &text[11..16])
}

/// `just now`, `5 min ago`, `3 h ago`, `2 days ago`.
pub(super) fn ago(unix: i64) -> String {
    let secs = (now() - unix).max(0);
    match secs {
        0..=59 => "just now".into(),
        60..=3599 => format!("{} min ago", secs / 60),
        3600..=86_399 => format!("{} h ago", secs / 3600),
        _ => match secs / 86_400 {
            1 => "1 day ago".into(),
            n => format!("{n} days ago"),
        },
    }
}

/// Seconds since the epoch, now.
pub(super) use crate::store::unix_now as now;
