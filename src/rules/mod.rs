//! Stack-aware rules: what must hold across hosts for the web stack to work.
//!
//! Decoding already guarantees each value is well-formed on its own; the rules
//! here look at the inventory as a whole (duplicate addresses, a virtual IP
//! outside the balancers' subnet, an Nginx upstream list that is not the app
//! tier). Every rule appends diagnostics and never stops, so one run shows all
//! problems. Rules are grouped by what they look at, one file each.

mod backup;
mod files;
mod firewall;
mod hosts;
mod load_balancer;
mod networks;
mod tiers;
mod tls;

use crate::diagnostic::Diagnostic;
use crate::inventory::Inventory;

/// Runs every rule and returns what they found, errors and warnings alike.
pub fn run(inventory: &Inventory) -> Vec<Diagnostic> {
    let mut found = Vec::new();
    hosts::check(inventory, &mut found);
    load_balancer::check(inventory, &mut found);
    networks::check(inventory, &mut found);
    tiers::check(inventory, &mut found);
    files::check(inventory, &mut found);
    firewall::check(inventory, &mut found);
    tls::check(inventory, &mut found);
    backup::check(inventory, &mut found);
    found
}

#[cfg(test)]
pub(crate) mod test_support {
    use crate::diagnostic::Diagnostic;
    use crate::inventory::{Inventory, parse};
    use crate::source::SourceFile;

    /// A complete, valid five-server inventory; tests break one thing in it.
    pub const VALID: &str = include_str!("../../tests/fixtures/minimal.yml");

    pub fn inventory(text: &str) -> Inventory {
        let base = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        let loaded = parse(SourceFile::new("test.yml", text), crate::source::LocalFiles::confined(&base, &[]));
        let errors: Vec<_> = loaded.diagnostics.iter().map(|d| d.message.clone()).collect();
        assert!(errors.is_empty(), "the test inventory should decode cleanly: {errors:?}");
        loaded.inventory.expect("decoded inventory")
    }

    /// The stack of `text`, which must pass every rule.
    pub fn stack(text: &str) -> crate::stack::Stack {
        let inventory = inventory(text);
        let errors: Vec<_> = super::run(&inventory).into_iter().filter(Diagnostic::is_error).collect();
        assert!(errors.is_empty(), "the test inventory should pass the rules: {errors:?}");
        crate::stack::Stack::of(inventory).expect("a stack")
    }

    /// The codes of every diagnostic the rules report for `text`.
    pub fn codes(text: &str) -> Vec<&'static str> {
        super::run(&inventory(text)).iter().map(|d: &Diagnostic| d.code).collect()
    }

    /// `VALID` with one substring replaced.
    pub fn broken(from: &str, to: &str) -> String {
        assert!(VALID.contains(from), "fixture has no `{from}`");
        VALID.replacen(from, to, 1)
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::*;

    #[test]
    fn the_valid_fixture_passes_every_rule() {
        assert_eq!(codes(VALID), Vec::<&str>::new());
    }
}
