//! The roles a host can have in the stack and what each depends on.
//!
//! Its own module, below the inventory (which decodes role names), the
//! stack and the topology, and the layers after render (desired state,
//! plan, apply), which order their work by role without reaching the
//! inventory through another module for it.

/// What a host does in the stack.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Database,
    App,
    Web,
    LoadBalancer,
}

/// Roles in dependency order: a role comes after everything it depends on.
/// A topological sort of [`Role::depends_on`], so adding a role never means
/// editing a chain of if/else.
pub fn role_order() -> Vec<Role> {
    let mut order: Vec<Role> = Vec::with_capacity(Role::ALL.len());
    while order.len() < Role::ALL.len() {
        let before = order.len();
        for role in Role::ALL {
            if !order.contains(&role) && role.depends_on().iter().all(|dependency| order.contains(dependency)) {
                order.push(role);
            }
        }
        assert!(order.len() > before, "the role dependency graph has a cycle");
    }
    order
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered_by_their_dependencies() {
        assert_eq!(role_order(), vec![Role::Database, Role::App, Role::Web, Role::LoadBalancer]);
    }
}
