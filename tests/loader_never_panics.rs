//! Property tests of the inventory loader: whatever bytes it is given, it
//! returns diagnostics and never panics. Inputs are both arbitrary strings
//! and YAML-shaped mutations of a real inventory, which reach much deeper
//! into the decoder and the rules than random bytes do. Whatever passes
//! every rule must also be a `Stack`.

use std::path::Path;

use infra::inventory;
use infra::source::SourceFile;
use proptest::prelude::*;

const VALID: &str = include_str!("fixtures/minimal.yml");

fn load_everything(text: String) {
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let loaded = inventory::parse(SourceFile::new("fuzz.yml", text), infra::source::LocalFiles::confined(&base, &[]));
    if let Some(inventory) = &loaded.inventory {
        let diagnostics = infra::rules::run(inventory);
        let _ = infra::diagnostic::render(&diagnostics, &loaded.source, infra::diagnostic::Style::Plain);
        if !loaded.diagnostics.iter().any(|d| d.is_error()) && !diagnostics.iter().any(|d| d.is_error()) {
            // What the rules let through is a stack: every section there,
            // every host with a stage.
            let stack = infra::stack::Stack::of(inventory.clone());
            assert!(stack.is_ok(), "the rules passed an inventory that is no stack: {stack:?}");
            if let Ok(stack) = stack {
                let _ = infra::render::render(&stack, infra::render::SecretMode::Placeholder);
            }
        }
    }
    let _ = infra::diagnostic::render(&loaded.diagnostics, &loaded.source, infra::diagnostic::Style::Plain);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,400}") {
        load_everything(text);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        load_everything(String::from_utf8_lossy(&bytes).into_owned());
    }

    #[test]
    fn mutated_inventories_never_panic(
        cut in 0..VALID.len(),
        length in 0usize..40,
        insert in "[\\[\\]{}:,\\- a-z0-9.\\n'\"&*!|>#]{0,20}",
    ) {
        let mut text = VALID.to_string();
        let start = (0..=cut).rev().find(|i| text.is_char_boundary(*i)).unwrap_or(0);
        let end = (start + length).min(text.len());
        let end = (end..=text.len()).find(|i| text.is_char_boundary(*i)).unwrap_or(text.len());
        text.replace_range(start..end, &insert);
        load_everything(text);
    }
}

#[test]
fn alias_bombs_are_refused_not_expanded() {
    let mut text = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
    for level in 0..12 {
        let previous = if level == 0 { "a".to_string() } else { format!("l{}", level - 1) };
        text.push_str(&format!("l{level}: &l{level} [*{previous}, *{previous}, *{previous}, *{previous}, *{previous}, *{previous}, *{previous}, *{previous}, *{previous}, *{previous}]\n"));
    }
    let loaded =
        inventory::parse(SourceFile::new("bomb.yml", text), infra::source::LocalFiles::confined(Path::new("."), &[]));
    assert!(loaded.diagnostics.iter().any(|d| d.is_error()));
}

/// Found by `mutated_inventories_never_panic`: `web:` with no value (here
/// an anchor on nothing) is no section, so web hosts get its defaults, as
/// when the key is absent, instead of passing the rules without one.
#[test]
fn an_empty_web_section_is_the_defaults() {
    let start = VALID.find("web:\n").expect("a web section") + "web:\n".len();
    let end = VALID[start..].find("\n\n").expect("its end") + start;
    let mut text = VALID.to_string();
    text.replace_range(start..end, " &static");
    load_everything(text);
}
