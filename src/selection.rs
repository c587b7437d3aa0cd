//! Which hosts a word on the command line means: a host's name, a role
//! name for all its hosts, or `all` (`--limit`, `infra ssh`, `logs`, `exec`, `lock
//! break`); and, when it means none, the error that suggests the nearest
//! name, so `web-1` finds `web-01`.

use crate::inventory::{did_you_mean, quoted_list};
use crate::role::Role;

/// A host as selection sees it: its name and roles.
pub trait Selectable {
    fn name(&self) -> &str;
    fn has_role(&self, role: Role) -> bool;
}

/// A word that selects no host.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NoMatch {
    #[error("`{asked}` is neither a host nor a role of the inventory{}; its hosts are {hosts}", suggestion.as_ref().map_or_else(String::new, |name| format!(" (did you mean `{name}`?)")))]
    Unknown {
        asked: String,
        suggestion: Option<String>,
        /// Every host name, quoted, for the message.
        hosts: String,
    },
    #[error("no host of the inventory has the role `{0}`")]
    EmptyRole(&'static str),
    #[error("`{asked}` is not an app host; the app hosts are {app_hosts}")]
    NotAnAppHost { asked: String, app_hosts: String },
}

impl NoMatch {
    /// The nearest name, when there is one.
    pub fn suggestion(&self) -> Option<&str> {
        match self {
            NoMatch::Unknown { suggestion, .. } => suggestion.as_deref(),
            NoMatch::EmptyRole(_) | NoMatch::NotAnAppHost { .. } => None,
        }
    }
}

/// The word for every host (a host named `all` would be selected by its
/// name first).
pub const ALL: &str = "all";

/// The hosts `asked` names, in their order: the host of that name, else
/// every host of that role, else every host for [`ALL`].
pub fn select<'a, T: Selectable>(hosts: &'a [T], asked: &str) -> Result<Vec<&'a T>, NoMatch> {
    if let Some(host) = hosts.iter().find(|host| host.name() == asked) {
        return Ok(vec![host]);
    }
    if asked == ALL {
        return Ok(hosts.iter().collect());
    }
    if let Some(role) = Role::from_name(asked) {
        let of_role: Vec<&T> = hosts.iter().filter(|host| host.has_role(role)).collect();
        if !of_role.is_empty() {
            return Ok(of_role);
        }
    }
    Err(no_match(hosts, asked))
}

/// The one app host a one-off command runs on: the first app host
/// `asked` selects (the first of the inventory when nothing is asked).
pub fn app_host<'a, T: Selectable>(hosts: &'a [T], asked: Option<&str>) -> Result<&'a T, NoMatch> {
    let selected = select(hosts, asked.unwrap_or(Role::App.name()))?;
    selected.into_iter().find(|host| host.has_role(Role::App)).ok_or_else(|| {
        let app_hosts: Vec<&str> = hosts.iter().filter(|host| host.has_role(Role::App)).map(Selectable::name).collect();
        NoMatch::NotAnAppHost { asked: asked.unwrap_or_default().to_string(), app_hosts: quoted_list(&app_hosts) }
    })
}

/// Whether `host` is one that `asked` names.
pub fn matches<T: Selectable>(host: &T, asked: &str) -> bool {
    host.name() == asked || asked == ALL || Role::from_name(asked).is_some_and(|role| host.has_role(role))
}

/// The error for a word no host or role matches, with the nearest name.
pub fn no_match<T: Selectable>(hosts: &[T], asked: &str) -> NoMatch {
    if let Some(role) = Role::from_name(asked) {
        return NoMatch::EmptyRole(role.name());
    }
    let names: Vec<&str> = hosts.iter().map(Selectable::name).collect();
    let mut words: Vec<&str> = Role::ALL.iter().map(|role| role.name()).collect();
    words.push(ALL);
    // A host's name first: `web-99` means a host, not the role `web`.
    let suggestion = did_you_mean(asked, &names).or_else(|| did_you_mean(asked, &words));
    NoMatch::Unknown {
        asked: asked.to_string(),
        suggestion: suggestion.map(str::to_string),
        hosts: quoted_list(&names),
    }
}

impl Selectable for crate::inventory::Host {
    fn name(&self) -> &str {
        &self.name.value
    }
    fn has_role(&self, role: Role) -> bool {
        self.roles.iter().any(|own| own.value == role)
    }
}

impl Selectable for crate::desired::HostState {
    fn name(&self) -> &str {
        &self.name
    }
    fn has_role(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Named(&'static str, Role);

    impl Selectable for Named {
        fn name(&self) -> &str {
            self.0
        }
        fn has_role(&self, role: Role) -> bool {
            self.1 == role
        }
    }

    const HOSTS: [Named; 3] =
        [Named("lb-01", Role::LoadBalancer), Named("lb-02", Role::LoadBalancer), Named("web-01", Role::Web)];

    #[test]
    fn a_host_name_or_a_role_selects() {
        let names = |asked| select(&HOSTS, asked).expect("selected").iter().map(|host| host.0).collect::<Vec<_>>();
        assert_eq!(names("web-01"), ["web-01"]);
        assert_eq!(names("load_balancer"), ["lb-01", "lb-02"]);
        assert_eq!(names("all"), ["lb-01", "lb-02", "web-01"]);
    }

    #[test]
    fn a_near_miss_is_suggested() {
        let error = select(&HOSTS, "web-1").expect_err("no such host");
        assert_eq!(
            error.to_string(),
            "`web-1` is neither a host nor a role of the inventory (did you mean `web-01`?); its hosts are `lb-01`, `lb-02`, `web-01`"
        );
        let empty = select(&HOSTS, "database").expect_err("no host has it");
        assert_eq!(empty.to_string(), "no host of the inventory has the role `database`");
        assert_eq!(select(&HOSTS, "loadbalancer").expect_err("typo").suggestion(), Some("load_balancer"));
    }

    #[test]
    fn a_one_off_command_runs_on_one_app_host() {
        let hosts = [Named("web-01", Role::Web), Named("app-01", Role::App), Named("app-02", Role::App)];
        let chosen = |asked| app_host(&hosts, asked).map(|host| host.0);
        assert_eq!(chosen(None), Ok("app-01"), "the first app host by default");
        assert_eq!(chosen(Some("app-02")), Ok("app-02"));
        assert_eq!(chosen(Some("all")), Ok("app-01"), "a selection's first app host");
        let refused = chosen(Some("web-01")).expect_err("not an app host");
        assert_eq!(refused.to_string(), "`web-01` is not an app host; the app hosts are `app-01`, `app-02`");
        assert_eq!(app_host(&HOSTS, None).map(|host| host.0), Err(NoMatch::EmptyRole("app")));
    }
}
