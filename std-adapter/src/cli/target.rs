//! Turning an address, a script or a script hash into what the client asks for.

use electrum_spv::address::address_script;
use electrum_spv::core::hash::ScriptHash;
use electrum_spv::{Error, Network, ScriptRef};

use super::Target;

/// A resolved target: the script when known, and its Electrum script hash.
pub struct Resolved {
    /// What the user typed.
    pub label: String,
    /// The output script, unless only a script hash was given.
    pub script: Option<Vec<u8>>,
    /// The script hash.
    pub hash: ScriptHash,
}

impl Resolved {
    pub fn as_ref(&self) -> ScriptRef<'_> {
        match &self.script {
            Some(s) => ScriptRef::Script(s),
            None => ScriptRef::Hash(self.hash),
        }
    }

    /// The script, for commands that need it.
    pub fn script(&self, command: &str) -> Result<&[u8], Error> {
        self.script.as_deref().ok_or_else(|| {
            Error::InvalidArgument(format!(
                "{command} needs an address or --script (servers answer it only for scripts)"
            ))
        })
    }
}

/// Every script `t` names, in the order given; all are resolved before any is asked for, so
/// a typo in the last one fails the command before it prints anything.
pub fn resolve(t: &Target, network: Network) -> Result<Vec<Resolved>, Error> {
    if !t.addresses.is_empty() {
        return t
            .addresses
            .iter()
            .map(|address| {
                let script = address_script(address, network)?;
                Ok(Resolved {
                    label: address.clone(),
                    hash: electrum_spv::core::script_hash(&script),
                    script: Some(script),
                })
            })
            .collect();
    }
    if let Some(hex) = &t.script {
        let script =
            super::hex_arg(hex).map_err(|e| Error::InvalidArgument(format!("--script: {e}")))?;
        return Ok(vec![Resolved {
            label: hex.clone(),
            hash: electrum_spv::core::script_hash(&script),
            script: Some(script),
        }]);
    }
    let hex = t.scripthash.as_deref().unwrap_or_default();
    let hash = ScriptHash::from_display_hex(hex.as_bytes())
        .map_err(|e| Error::InvalidArgument(format!("--scripthash: {e}")))?;
    Ok(vec![Resolved {
        label: hex.to_owned(),
        script: None,
        hash,
    }])
}
