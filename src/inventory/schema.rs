//! The inventory's JSON schema, for editors (yaml-language-server completes
//! keys and flags typos as the user types). It is derived from the model's
//! own types (`#[derive(JsonSchema)]` in `model`), so a key added to the
//! model is in the schema; the few values the decoder reads in a shape of
//! their own (a secret reference, `app.source`, `become`) are described
//! here, beside nothing else. A test checks every key the decoder asks for
//! is in the schema and every example inventory validates against it.

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};

use super::model::{Balance, Inventory, LAB_PREINSTALLABLE};

/// The schema document `infra schema` prints.
pub fn document() -> serde_json::Value {
    let generator = schemars::generate::SchemaSettings::draft2020_12().into_generator();
    generator.into_root_schema_for::<Inventory>().to_value()
}

/// Declares a type that stands in for a value in the schema (`with = "…"`
/// on a model field), so that `Option<It>` makes the key optional.
macro_rules! described {
    ($(#[$doc:meta])* $name:ident, $schema:expr) => {
        $(#[$doc])*
        pub struct $name;

        impl JsonSchema for $name {
            fn inline_schema() -> bool {
                true
            }

            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($name).into()
            }

            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                $schema
            }
        }
    };
}

described!(
    /// `{env: NAME}` or `{file: path}`: where a secret comes from, never the secret.
    Secret,
    secret()
);
described!(
    /// `sudo` or `none`.
    Become,
    json_schema!({"enum": ["sudo", "none"]})
);
described!(
    /// A lab host's sudo that asks for a password: the host infra must refuse.
    LabSudo,
    json_schema!({"enum": ["password"]})
);
described!(
    /// Packages the lab installs at first boot.
    Preinstallable,
    json_schema!({"type": "array", "items": {"enum": LAB_PREINSTALLABLE}})
);
described!(
    /// HAProxy's balancing algorithm.
    BalanceName,
    json_schema!({"enum": Balance::NAMES})
);
described!(
    /// A directory, or a git repository and the revision to deploy.
    AppSource,
    json_schema!({
        "oneOf": [
            {"type": "string"},
            {
                "type": "object",
                "properties": {"git": {"type": "string"}, "ref": {"type": "string"}},
                "required": ["git", "ref"],
                "additionalProperties": false
            }
        ]
    })
);
described!(
    /// `NAME: value` (a string or a number) or `NAME: {env: ...}` for a secret.
    AppEnv,
    json_schema!({
        "type": "object",
        "additionalProperties": {"anyOf": [{"type": "string"}, {"type": "integer"}, secret()]}
    })
);

fn secret() -> Schema {
    json_schema!({
        "oneOf": [
            {"type": "object", "properties": {"env": {"type": "string"}}, "required": ["env"], "additionalProperties": false},
            {"type": "object", "properties": {"file": {"type": "string"}}, "required": ["file"], "additionalProperties": false}
        ]
    })
}

impl<T: JsonSchema> JsonSchema for crate::source::Spanned<T> {
    fn inline_schema() -> bool {
        T::inline_schema()
    }

    fn schema_name() -> std::borrow::Cow<'static, str> {
        T::schema_name()
    }

    fn schema_id() -> std::borrow::Cow<'static, str> {
        T::schema_id()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        T::json_schema(generator)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::source::SourceFile;

    const EVERY_KEY: &str = include_str!("../../tests/fixtures/every-key.yml");

    /// Every property name anywhere in the schema.
    fn properties(value: &serde_json::Value, found: &mut BTreeSet<String>) {
        match value {
            serde_json::Value::Object(map) => {
                if let Some(serde_json::Value::Object(properties)) = map.get("properties") {
                    found.extend(properties.keys().cloned());
                }
                map.values().for_each(|child| properties(child, found));
            }
            serde_json::Value::Array(items) => items.iter().for_each(|child| properties(child, found)),
            _ => {}
        }
    }

    /// Every mapping key of a YAML tree, but not `app.env`'s names (the app's, not infra's).
    fn keys(node: &crate::inventory::yaml::Node, found: &mut BTreeSet<String>) {
        use crate::inventory::yaml::Value;
        match &node.value {
            Value::Mapping(entries) => {
                for (key, value) in entries {
                    if let Value::String(name) = &key.value {
                        found.insert(name.clone());
                        if name == "env" && matches!(value.value, Value::Mapping(_)) {
                            continue;
                        }
                    }
                    keys(value, found);
                }
            }
            Value::Sequence(items) => items.iter().for_each(|item| keys(item, found)),
            _ => {}
        }
    }

    #[test]
    fn the_schema_and_the_decoder_know_the_same_keys() {
        let source = SourceFile::new("every-key.yml", EVERY_KEY);
        super::super::decode::ASKED.with(|asked| asked.borrow_mut().clear());
        let loaded = crate::inventory::parse(
            source.clone(),
            crate::source::LocalFiles::confined(std::path::Path::new("."), &[]),
        );
        let codes: Vec<&str> = loaded.diagnostics.iter().map(|diagnostic| diagnostic.code).collect();
        assert!(!codes.contains(&"unknown-key") && !codes.contains(&"missing-key"), "{codes:?}");
        let asked: BTreeSet<String> =
            super::super::decode::ASKED.with(|asked| asked.borrow().iter().map(|key| key.to_string()).collect());

        let mut in_schema = BTreeSet::new();
        properties(&document(), &mut in_schema);
        let mut in_file = BTreeSet::new();
        keys(&crate::inventory::yaml::parse(&source).expect("valid YAML"), &mut in_file);

        let unknown_to_schema: Vec<_> = asked.difference(&in_schema).collect();
        assert!(unknown_to_schema.is_empty(), "the decoder reads keys the schema lacks: {unknown_to_schema:?}");
        let untested: Vec<_> = in_schema.difference(&in_file).collect();
        assert!(untested.is_empty(), "schema keys missing from every-key.yml: {untested:?}");
    }
}
