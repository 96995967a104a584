//! Addresses in JSON as `"0x…"` strings, the one way every document writes
//! and reads them: JSON numbers lose precision above 2^53, and addresses
//! read better in hex. Use as `#[serde(with = "crate::hex")]`, or
//! `crate::hex::option` for an `Option<u64>`, or wrap a value in [`Hex`].

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An address that serializes as `"0x…"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hex(pub u64);

impl Serialize for Hex {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&format_args!("{:#x}", self.0))
    }
}

/// Writes an address as `"0x…"`.
pub fn serialize<S: Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
    Hex(*v).serialize(s)
}

/// Reads an address written by [`serialize`].
pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    parse(&String::deserialize(d)?)
}

fn parse<E: serde::de::Error>(s: &str) -> Result<u64, E> {
    let digits = s
        .strip_prefix("0x")
        .ok_or_else(|| E::custom("address must start with 0x"))?;
    u64::from_str_radix(digits, 16).map_err(E::custom)
}

/// The same for an optional address (`null` when absent).
pub mod option {
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes `"0x…"` or `null`.
    pub(crate) fn serialize<S: Serializer>(v: &Option<u64>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(a) => super::serialize(a, s),
            None => s.serialize_none(),
        }
    }

    /// Reads what [`serialize`] wrote.
    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|s| super::parse(&s))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    struct T {
        #[serde(with = "crate::hex")]
        a: u64,
        #[serde(with = "crate::hex::option")]
        b: Option<u64>,
    }

    #[test]
    fn round_trips_and_refuses_bare_numbers() {
        let t = T {
            a: 0x7fff_0000_1000,
            b: None,
        };
        let s = serde_json::to_string(&t).unwrap();
        assert_eq!(s, r#"{"a":"0x7fff00001000","b":null}"#);
        assert_eq!(serde_json::from_str::<T>(&s).unwrap(), t);
        assert!(serde_json::from_str::<T>(r#"{"a":"7f","b":null}"#).is_err());
        assert!(serde_json::from_str::<T>(r#"{"a":"0x1","b":"12"}"#).is_err());
    }
}
