//! `serde` for core's result types (feature `serde`): hashes as their display hex (what
//! Electrum servers, block explorers and rust-bitcoin show), a [`TxHeight`] as the protocol's
//! signed height (`0` and `-1` for the mempool). No allocation either way.

use core::fmt;
use core::marker::PhantomData;
use core::str::FromStr;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::hash::{BlockHash, MerkleNode, ScriptHash, Status, Txid, Wtxid};
use crate::script::TxHeight;

/// Reads a value from its display string.
struct FromDisplay<T>(PhantomData<T>);

impl<T: FromStr> Visitor<'_> for FromDisplay<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("64 hex digits")
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<T, E> {
        T::from_str(s).map_err(|_| E::invalid_value(de::Unexpected::Str(s), &self))
    }
}

macro_rules! as_display_hex {
    ($($t:ty),*) => {$(
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                d.deserialize_str(FromDisplay(PhantomData))
            }
        }
    )*};
}

as_display_hex!(BlockHash, Txid, Wtxid, MerkleNode, ScriptHash, Status);

impl Serialize for TxHeight {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(self.to_i64())
    }
}

impl<'de> Deserialize<'de> for TxHeight {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let h = i64::deserialize(d)?;
        TxHeight::from_i64(h)
            .map_err(|_| de::Error::invalid_value(de::Unexpected::Signed(h), &"a height, 0 or -1"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_and_heights_round_trip_as_the_protocol_writes_them() {
        let hex = "0e3e2357e806b6cdb1f70b54c3a3a17b6714ee1f0e68bebb44a74b1efd512098";
        let txid: Txid = serde_json::from_str(&format!("\"{hex}\"")).unwrap();
        assert_eq!(txid.to_string(), hex);
        assert_eq!(serde_json::to_string(&txid).unwrap(), format!("\"{hex}\""));
        for (h, json) in [
            (TxHeight::Confirmed(113), "113"),
            (TxHeight::Mempool, "0"),
            (TxHeight::MempoolUnconfirmedParent, "-1"),
        ] {
            assert_eq!(serde_json::to_string(&h).unwrap(), json);
            assert_eq!(serde_json::from_str::<TxHeight>(json).unwrap(), h);
        }
        assert!(serde_json::from_str::<TxHeight>("-2").is_err());
        assert!(serde_json::from_str::<Txid>("\"00\"").is_err());
        assert!(serde_json::from_str::<BlockHash>("12").is_err());
    }
}
