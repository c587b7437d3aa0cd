//! The roles a host can have in the stack and what each depends on.
//!
//! Its own module, below both the inventory (which decodes role names) and
//! the topology (which orders them), so neither has to import the other
//! for it.

/// What a host does in the stack.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Database,
    App,
    Web,
    LoadBalancer,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Database, Role::App, Role::Web, Role::LoadBalancer];
    pub const NAMES: [&'static str; 4] = ["database", "app", "web", "load_balancer"];

    pub fn name(self) -> &'static str {
        Role::NAMES[self as usize]
    }

    pub fn from_name(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|role| role.name() == name)
    }

    /// The roles that must be converged and healthy before this one is
    /// touched: each tier talks to the one behind it.
    pub fn depends_on(self) -> &'static [Role] {
        match self {
            Role::Database => &[],
            Role::App => &[Role::Database],
            Role::Web => &[Role::App],
            Role::LoadBalancer => &[Role::Web],
        }
    }
}
