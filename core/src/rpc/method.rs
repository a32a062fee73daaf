//! Every client method of protocol 1.4 to 1.7, its wire name and the versions that have it.

use core::fmt;

use crate::rpc::version::ProtocolVersion;

/// A request a client can send. Script methods are named by what they do; their wire name is
/// `blockchain.scripthash.*` below 1.7 and `blockchain.scriptpubkey.*` from 1.7 (PROTOCOL.md §2.7).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Method {
    /// `server.version`: must be the first message.
    ServerVersion,
    /// `server.features`.
    ServerFeatures,
    /// `server.banner`.
    ServerBanner,
    /// `server.donation_address`.
    ServerDonationAddress,
    /// `server.peers.subscribe` (a plain request despite its name).
    ServerPeersSubscribe,
    /// `server.add_peer` (meant for servers; costs 100 on ElectrumX).
    ServerAddPeer,
    /// `server.ping`; from 1.7 with `pong_len` and `data`.
    ServerPing,
    /// `blockchain.headers.subscribe`.
    HeadersSubscribe,
    /// `blockchain.block.header`.
    BlockHeader,
    /// `blockchain.block.headers`.
    BlockHeaders,
    /// `blockchain.estimatefee`.
    EstimateFee,
    /// `blockchain.relayfee` (below 1.6 only).
    RelayFee,
    /// `blockchain.scripthash.get_balance` / `blockchain.scriptpubkey.get_balance`.
    ScriptGetBalance,
    /// `…get_history`.
    ScriptGetHistory,
    /// `…get_mempool`.
    ScriptGetMempool,
    /// `…listunspent`.
    ScriptListUnspent,
    /// `…subscribe`.
    ScriptSubscribe,
    /// `…unsubscribe` (from 1.4.2).
    ScriptUnsubscribe,
    /// `blockchain.outpoint.subscribe` (1.7).
    OutpointSubscribe,
    /// `blockchain.outpoint.get_status` (1.7).
    OutpointGetStatus,
    /// `blockchain.outpoint.unsubscribe` (1.7).
    OutpointUnsubscribe,
    /// `blockchain.transaction.broadcast`.
    TransactionBroadcast,
    /// `blockchain.transaction.broadcast_package` (1.6).
    TransactionBroadcastPackage,
    /// `blockchain.transaction.testmempoolaccept` (1.7).
    TransactionTestMempoolAccept,
    /// `blockchain.transaction.get`.
    TransactionGet,
    /// `blockchain.transaction.get_merkle`.
    TransactionGetMerkle,
    /// `blockchain.transaction.id_from_pos`.
    TransactionIdFromPos,
    /// `mempool.get_fee_histogram`.
    MempoolGetFeeHistogram,
    /// `mempool.get_info` (1.6).
    MempoolGetInfo,
    /// `mempool.recent` (1.7).
    MempoolRecent,
}

impl Method {
    /// Every method, in catalogue order.
    pub const ALL: [Method; 30] = [
        Method::ServerVersion,
        Method::ServerFeatures,
        Method::ServerBanner,
        Method::ServerDonationAddress,
        Method::ServerPeersSubscribe,
        Method::ServerAddPeer,
        Method::ServerPing,
        Method::HeadersSubscribe,
        Method::BlockHeader,
        Method::BlockHeaders,
        Method::EstimateFee,
        Method::RelayFee,
        Method::ScriptGetBalance,
        Method::ScriptGetHistory,
        Method::ScriptGetMempool,
        Method::ScriptListUnspent,
        Method::ScriptSubscribe,
        Method::ScriptUnsubscribe,
        Method::OutpointSubscribe,
        Method::OutpointGetStatus,
        Method::OutpointUnsubscribe,
        Method::TransactionBroadcast,
        Method::TransactionBroadcastPackage,
        Method::TransactionTestMempoolAccept,
        Method::TransactionGet,
        Method::TransactionGetMerkle,
        Method::TransactionIdFromPos,
        Method::MempoolGetFeeHistogram,
        Method::MempoolGetInfo,
        Method::MempoolRecent,
    ];

    /// The name on the wire at version `v`.
    pub const fn wire_name(self, v: ProtocolVersion) -> &'static str {
        let spk = v.major > 1 || (v.major == 1 && v.minor >= 7);
        match self {
            Method::ServerVersion => "server.version",
            Method::ServerFeatures => "server.features",
            Method::ServerBanner => "server.banner",
            Method::ServerDonationAddress => "server.donation_address",
            Method::ServerPeersSubscribe => "server.peers.subscribe",
            Method::ServerAddPeer => "server.add_peer",
            Method::ServerPing => "server.ping",
            Method::HeadersSubscribe => "blockchain.headers.subscribe",
            Method::BlockHeader => "blockchain.block.header",
            Method::BlockHeaders => "blockchain.block.headers",
            Method::EstimateFee => "blockchain.estimatefee",
            Method::RelayFee => "blockchain.relayfee",
            Method::ScriptGetBalance if spk => "blockchain.scriptpubkey.get_balance",
            Method::ScriptGetBalance => "blockchain.scripthash.get_balance",
            Method::ScriptGetHistory if spk => "blockchain.scriptpubkey.get_history",
            Method::ScriptGetHistory => "blockchain.scripthash.get_history",
            Method::ScriptGetMempool if spk => "blockchain.scriptpubkey.get_mempool",
            Method::ScriptGetMempool => "blockchain.scripthash.get_mempool",
            Method::ScriptListUnspent if spk => "blockchain.scriptpubkey.listunspent",
            Method::ScriptListUnspent => "blockchain.scripthash.listunspent",
            Method::ScriptSubscribe if spk => "blockchain.scriptpubkey.subscribe",
            Method::ScriptSubscribe => "blockchain.scripthash.subscribe",
            Method::ScriptUnsubscribe if spk => "blockchain.scriptpubkey.unsubscribe",
            Method::ScriptUnsubscribe => "blockchain.scripthash.unsubscribe",
            Method::OutpointSubscribe => "blockchain.outpoint.subscribe",
            Method::OutpointGetStatus => "blockchain.outpoint.get_status",
            Method::OutpointUnsubscribe => "blockchain.outpoint.unsubscribe",
            Method::TransactionBroadcast => "blockchain.transaction.broadcast",
            Method::TransactionBroadcastPackage => "blockchain.transaction.broadcast_package",
            Method::TransactionTestMempoolAccept => "blockchain.transaction.testmempoolaccept",
            Method::TransactionGet => "blockchain.transaction.get",
            Method::TransactionGetMerkle => "blockchain.transaction.get_merkle",
            Method::TransactionIdFromPos => "blockchain.transaction.id_from_pos",
            Method::MempoolGetFeeHistogram => "mempool.get_fee_histogram",
            Method::MempoolGetInfo => "mempool.get_info",
            Method::MempoolRecent => "mempool.recent",
        }
    }

    /// The version range that has this method, as ElectrumX 2.0 registers them (§2.7):
    /// `(first version, first version without it)`.
    pub const fn versions(self) -> (ProtocolVersion, Option<ProtocolVersion>) {
        match self {
            Method::RelayFee => (ProtocolVersion::V1_4, Some(ProtocolVersion::V1_6)),
            Method::ScriptUnsubscribe => (ProtocolVersion::V1_4_2, None),
            Method::TransactionBroadcastPackage | Method::MempoolGetInfo => {
                (ProtocolVersion::V1_6, None)
            }
            Method::OutpointSubscribe
            | Method::OutpointGetStatus
            | Method::OutpointUnsubscribe
            | Method::TransactionTestMempoolAccept
            | Method::MempoolRecent => (ProtocolVersion::V1_7, None),
            _ => (ProtocolVersion::V1_4, None),
        }
    }

    /// Whether a server that negotiated `v` has this method.
    pub fn available_at(self, v: ProtocolVersion) -> bool {
        let (from, until) = self.versions();
        v >= from && until.is_none_or(|u| v < u)
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.wire_name(ProtocolVersion::V1_4))
    }
}

/// A server-sent notification this client understands; anything else is ignored
/// (PROTOCOL.md §7 point 2: `server.ping`, ElectrumX's junk notifications, altcoin extras).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum NotificationKind {
    /// `blockchain.headers.subscribe`: a new tip.
    Headers,
    /// `blockchain.scripthash.subscribe` or `blockchain.scriptpubkey.subscribe`: a status.
    Script,
    /// `blockchain.outpoint.subscribe`: an outpoint status.
    Outpoint,
    /// `server.ping` (1.7: either side may send it as a notification).
    Ping,
}

impl NotificationKind {
    /// Recognises a notification by its raw method name.
    pub fn from_method(name: &[u8]) -> Option<NotificationKind> {
        Some(match name {
            b"blockchain.headers.subscribe" => NotificationKind::Headers,
            b"blockchain.scripthash.subscribe" | b"blockchain.scriptpubkey.subscribe" => {
                NotificationKind::Script
            }
            b"blockchain.outpoint.subscribe" => NotificationKind::Outpoint,
            b"server.ping" => NotificationKind::Ping,
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_methods_switch_names_at_1_7() {
        let at = |m: Method, v| m.wire_name(v);
        assert_eq!(
            at(Method::ScriptGetHistory, ProtocolVersion::V1_6),
            "blockchain.scripthash.get_history"
        );
        assert_eq!(
            at(Method::ScriptGetHistory, ProtocolVersion::V1_7),
            "blockchain.scriptpubkey.get_history"
        );
        assert_eq!(
            at(Method::ScriptGetHistory, ProtocolVersion::new(1, 7, 1)),
            "blockchain.scriptpubkey.get_history"
        );
        assert_eq!(
            at(Method::ScriptSubscribe, ProtocolVersion::new(1, 6, 9)),
            "blockchain.scripthash.subscribe"
        );
    }

    #[test]
    fn availability_follows_electrumx_2() {
        use ProtocolVersion as V;
        assert!(Method::RelayFee.available_at(V::new(1, 5, 0)));
        assert!(!Method::RelayFee.available_at(V::V1_6));
        assert!(!Method::ScriptUnsubscribe.available_at(V::V1_4));
        assert!(Method::ScriptUnsubscribe.available_at(V::V1_4_2));
        assert!(
            Method::MempoolGetInfo.available_at(V::V1_6)
                && !Method::MempoolGetInfo.available_at(V::V1_4_2)
        );
        assert!(
            Method::MempoolRecent.available_at(V::V1_7)
                && !Method::MempoolRecent.available_at(V::V1_6)
        );
        let always = Method::ALL
            .iter()
            .filter(|m| m.available_at(V::V1_4) && m.available_at(V::V1_7));
        // 30 methods less the 9 gated ones: relayfee, scripthash unsubscribe, broadcast_package,
        // mempool.get_info, three outpoint methods, testmempoolaccept, mempool.recent.
        assert_eq!(always.count(), 21);
    }

    #[test]
    fn notifications_are_recognised_and_junk_ignored() {
        assert_eq!(
            NotificationKind::from_method(b"blockchain.scriptpubkey.subscribe"),
            Some(NotificationKind::Script)
        );
        assert_eq!(NotificationKind::from_method(b"blockchain.relayfee"), None);
        assert_eq!(NotificationKind::from_method(b"masternode.subscribe"), None);
    }
}
