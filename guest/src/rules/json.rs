//! Strict JSON parsing of request bodies (RFC 8259 §4: "The names within an object SHOULD be
//! unique"; a body that repeats one is refused rather than read as whatever the parser keeps).

use serde_json::Value;

/// Parses JSON like `serde_json::from_slice` (with its nesting limit), but refuses an object
/// that names a key twice: serde_json silently keeps the last one, so `{"active": true,
/// "active": false}` would mean whatever the parser happened to do. SCIM attribute names are
/// case-insensitive, so `userName` and `USERNAME` are the same key too.
pub(crate) fn parse(body: &[u8]) -> serde_json::Result<Value> {
    use serde::de::DeserializeSeed;
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = strict::NoDuplicateKeys.deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}

pub(crate) mod strict {
    use std::collections::HashSet;
    use std::fmt;

    use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
    use serde_json::{Map, Value};

    /// Builds a [`Value`] as its own `Deserialize` does, failing on a repeated object key.
    pub struct NoDuplicateKeys;

    impl<'de> DeserializeSeed<'de> for NoDuplicateKeys {
        type Value = Value;
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
            d.deserialize_any(self)
        }
    }

    impl<'de> Visitor<'de> for NoDuplicateKeys {
        type Value = Value;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON value")
        }
        fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
            Ok(Value::Bool(v))
        }
        fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
            Ok(v.into())
        }
        fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
            Ok(v.into())
        }
        fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
            Ok(v.into())
        }
        fn visit_str<E>(self, v: &str) -> Result<Value, E> {
            Ok(Value::String(v.to_owned()))
        }
        fn visit_string<E>(self, v: String) -> Result<Value, E> {
            Ok(Value::String(v))
        }
        fn visit_unit<E>(self) -> Result<Value, E> {
            Ok(Value::Null)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
            let mut items = Vec::new();
            while let Some(item) = seq.next_element_seed(NoDuplicateKeys)? {
                items.push(item);
            }
            Ok(Value::Array(items))
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
            let (mut object, mut seen) = (Map::new(), HashSet::new());
            while let Some(key) = map.next_key::<String>()? {
                if !seen.insert(key.to_lowercase()) {
                    return Err(de::Error::custom(format!("duplicate key {key:?}")));
                }
                let value = map.next_value_seed(NoDuplicateKeys)?;
                object.insert(key, value);
            }
            Ok(Value::Object(object))
        }
    }
}
