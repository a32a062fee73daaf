//! A deterministic regtest chain: wallets, real signed transactions, mining, a mempool,
//! reorgs, and the Electrum records (history, status, balance, utxos) the kit expects a
//! server to report for any script.

use std::collections::{HashMap, HashSet};
use std::fmt;

use bitcoin::absolute::LockTime;
use bitcoin::block::{Header, Version as BlockVersion};
use bitcoin::blockdata::constants::genesis_block;
use bitcoin::consensus::encode::serialize;
use bitcoin::hashes::{Hash, sha256};
use bitcoin::key::{Keypair, TapTweak};
use bitcoin::script::{Builder, PushBytesBuf};
use bitcoin::secp256k1::{All, Message, Secp256k1, SecretKey};
use bitcoin::sighash::{EcdsaSighashType, Prevouts, SighashCache, TapSighashType};
use bitcoin::transaction::Version as TxVersion;
use bitcoin::{
    Address, Amount, Block, BlockHash, CompactTarget, CompressedPublicKey, Network, OutPoint,
    Script, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Txid, Witness, XOnlyPublicKey,
};

use crate::Error;

/// Regtest genesis time; block `h` of the kit's chain has time `GENESIS_TIME + 600 * h`.
pub const GENESIS_TIME: u32 = 1_296_688_602;
/// Regtest proof-of-work limit in compact form (every kit block uses it).
pub const REGTEST_BITS: u32 = 0x207f_ffff;
/// Confirmations before a coinbase output may be spent (consensus rule).
pub const COINBASE_MATURITY: u32 = 100;
/// Fee rate of kit-made transactions, in sat/vB.
pub const FEE_RATE_SAT_VB: u64 = 2;
/// Outputs below this value are not created as change (the value goes to the fee).
pub const DUST: u64 = 546;

/// The four script types every kit wallet owns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ScriptKind {
    /// Pay to public key hash (legacy ECDSA sighash).
    P2pkh,
    /// Native segwit v0 pay to witness public key hash (BIP143 sighash).
    P2wpkh,
    /// P2WPKH nested in P2SH (BIP143 sighash, redeem script in scriptSig).
    P2shP2wpkh,
    /// Taproot, spent by key path with a BIP340 Schnorr signature.
    P2tr,
}

impl ScriptKind {
    /// All four kinds, in the order wallets store their keys.
    pub const ALL: [ScriptKind; 4] = [
        ScriptKind::P2pkh,
        ScriptKind::P2wpkh,
        ScriptKind::P2shP2wpkh,
        ScriptKind::P2tr,
    ];

    fn index(self) -> usize {
        self as usize
    }

    /// A short lowercase name (`p2pkh`, `p2wpkh`, `p2sh-p2wpkh`, `p2tr`).
    pub fn name(self) -> &'static str {
        match self {
            ScriptKind::P2pkh => "p2pkh",
            ScriptKind::P2wpkh => "p2wpkh",
            ScriptKind::P2shP2wpkh => "p2sh-p2wpkh",
            ScriptKind::P2tr => "p2tr",
        }
    }
}

/// One key of a wallet and the script it controls.
#[derive(Clone, Debug)]
pub struct WalletKey {
    /// The script type.
    pub kind: ScriptKind,
    /// The secret key (derived from a fixed seed).
    pub secret_key: SecretKey,
    /// Its compressed public key.
    pub public_key: CompressedPublicKey,
    /// The scriptPubKey that pays to this key.
    pub script_pubkey: ScriptBuf,
    /// The regtest address of `script_pubkey`.
    pub address: Address,
}

/// A deterministic wallet: one key per [`ScriptKind`], derived from its name.
#[derive(Clone, Debug)]
pub struct Wallet {
    /// The wallet's name (also its key seed).
    pub name: String,
    /// One key per kind, in [`ScriptKind::ALL`] order.
    pub keys: Vec<WalletKey>,
}

impl Wallet {
    /// Derives the wallet named `name`: the secret key of kind `k` is
    /// `SHA256("electrum-spv-testkit/<name>/<k>")`.
    pub fn new(secp: &Secp256k1<All>, name: &str) -> Wallet {
        let keys = ScriptKind::ALL
            .iter()
            .map(|&kind| {
                let seed = format!("electrum-spv-testkit/{name}/{}", kind.name());
                let digest = sha256::Hash::hash(seed.as_bytes());
                let secret_key =
                    SecretKey::from_slice(digest.as_byte_array()).expect("valid secret key");
                let public_key = CompressedPublicKey(secret_key.public_key(secp));
                let address = match kind {
                    ScriptKind::P2pkh => Address::p2pkh(public_key, Network::Regtest),
                    ScriptKind::P2wpkh => Address::p2wpkh(&public_key, Network::Regtest),
                    ScriptKind::P2shP2wpkh => Address::p2shwpkh(&public_key, Network::Regtest),
                    ScriptKind::P2tr => {
                        let (xonly, _) = public_key.0.x_only_public_key();
                        Address::p2tr(secp, xonly, None, Network::Regtest)
                    }
                };
                WalletKey {
                    kind,
                    secret_key,
                    public_key,
                    script_pubkey: address.script_pubkey(),
                    address,
                }
            })
            .collect();
        Wallet {
            name: name.to_owned(),
            keys,
        }
    }

    /// The key of `kind`.
    pub fn key(&self, kind: ScriptKind) -> &WalletKey {
        &self.keys[kind.index()]
    }

    /// The scriptPubKey of `kind`.
    pub fn script(&self, kind: ScriptKind) -> &Script {
        &self.key(kind).script_pubkey
    }

    /// The regtest address of `kind`.
    pub fn address(&self, kind: ScriptKind) -> &Address {
        &self.key(kind).address
    }

    /// All four scriptPubKeys, in [`ScriptKind::ALL`] order.
    pub fn scripts(&self) -> Vec<ScriptBuf> {
        self.keys.iter().map(|k| k.script_pubkey.clone()).collect()
    }

    fn key_for_script(&self, script: &Script) -> Option<&WalletKey> {
        self.keys
            .iter()
            .find(|k| k.script_pubkey.as_script() == script)
    }
}

/// What a reorg does with the non-coinbase transactions of the blocks it removes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReorgTxs {
    /// Put them back into the mempool (ahead of the existing mempool), like bitcoind does.
    ToMempool,
    /// Drop them (and every mempool transaction that depended on them).
    Drop,
}

/// Which coins a send spends first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CoinOrder {
    /// Oldest first: confirmed by (height, position), then mempool in arrival order.
    Oldest,
    /// Newest first (spends unconfirmed change first, so makes height -1 transactions).
    Newest,
}

/// What to spend and where to pay, for [`Chain::build_tx`].
#[derive(Clone, Debug)]
pub struct SendSpec {
    /// Index of the paying wallet in [`Chain::wallets`].
    pub from: usize,
    /// Only spend coins of this kind (all kinds if `None`).
    pub from_kind: Option<ScriptKind>,
    /// Recipients.
    pub outputs: Vec<(ScriptBuf, Amount)>,
    /// Coin selection order.
    pub order: CoinOrder,
    /// Kind of the change output (rotates through the kinds if `None`).
    pub change_kind: Option<ScriptKind>,
}

impl SendSpec {
    /// Pay `amount` to `to` from any coin of wallet `from`, oldest coins first.
    pub fn new(from: usize, to: &Script, amount: Amount) -> SendSpec {
        SendSpec {
            from,
            from_kind: None,
            outputs: vec![(to.to_owned(), amount)],
            order: CoinOrder::Oldest,
            change_kind: None,
        }
    }

    /// Restricts the inputs to coins of `kind`.
    pub fn from_kind(mut self, kind: ScriptKind) -> SendSpec {
        self.from_kind = Some(kind);
        self
    }

    /// Sets the coin selection order.
    pub fn order(mut self, order: CoinOrder) -> SendSpec {
        self.order = order;
        self
    }

    /// Adds a recipient.
    pub fn pay(mut self, to: &Script, amount: Amount) -> SendSpec {
        self.outputs.push((to.to_owned(), amount));
        self
    }

    /// Sends the change to the wallet's script of `kind`.
    pub fn change_kind(mut self, kind: ScriptKind) -> SendSpec {
        self.change_kind = Some(kind);
        self
    }
}

/// An unspent output as the Electrum `listunspent` reports it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Utxo {
    /// Funding transaction.
    pub txid: Txid,
    /// Output index.
    pub vout: u32,
    /// Block height, 0 for the mempool.
    pub height: u32,
    /// Value in satoshis.
    pub value: u64,
}

/// The Electrum balance of a script: `confirmed` counts confirmed unspent outputs (ignoring
/// mempool spends); `unconfirmed` is the mempool's net effect (received minus spent).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Balance {
    /// Satoshis in confirmed unspent outputs.
    pub confirmed: u64,
    /// Net satoshis added by mempool transactions (can be negative).
    pub unconfirmed: i64,
}

/// The spend status of an outpoint (see [`Chain::outpoint_status`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct OutpointStatus {
    /// Height of the funding transaction (0 / -1 in the mempool); `None` if the output does
    /// not exist.
    pub funder_height: Option<i64>,
    /// The spending transaction and its height (0 / -1 in the mempool), if spent.
    pub spender: Option<(Txid, i64)>,
}

/// Where a transaction is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum TxLocation {
    /// In the block at `height`, at position `pos`.
    Block {
        /// Block height.
        height: u32,
        /// Index in the block (0 = coinbase).
        pos: usize,
    },
    /// In the mempool, at arrival index `index`.
    Mempool {
        /// Arrival order.
        index: usize,
    },
}

/// Output and spend index over blocks and mempool, rebuilt on demand (kit chains are small).
struct Index {
    /// Every output: (txout, location of its tx, is coinbase).
    outputs: HashMap<OutPoint, (TxOut, TxLocation, bool)>,
    /// Outpoint -> spending txid and its location.
    spent_by: HashMap<OutPoint, (Txid, TxLocation)>,
    /// Txid -> location.
    txs: HashMap<Txid, TxLocation>,
}

/// The kit's chain: blocks from the regtest genesis, a mempool and the wallets.
///
/// Wallet 0 is the miner: every coinbase pays to it (rotating through its four kinds).
#[derive(Clone, Debug)]
pub struct Chain {
    secp: Secp256k1<All>,
    blocks: Vec<Block>,
    mempool: Vec<Transaction>,
    wallets: Vec<Wallet>,
    /// Incremented by each reorg and written into coinbases, so replacement blocks differ.
    generation: u32,
    /// Rotates the change kind of kit-made transactions.
    tx_counter: usize,
    /// Where each confirmed transaction is (height, position), kept with `blocks`, so that
    /// [`Chain::find_tx`] (the stand-in's `getrawtransaction`) stays fast on long chains.
    confirmed: HashMap<Txid, (u32, usize)>,
}

/// Index of the miner wallet in [`Chain::default_wallets`].
pub const MINER: usize = 0;
/// Index of the wallet "alice" in [`Chain::default_wallets`].
pub const ALICE: usize = 1;
/// Index of the wallet "bob" in [`Chain::default_wallets`].
pub const BOB: usize = 2;

impl Chain {
    /// A chain holding only the regtest genesis block, with wallets named `wallet_names`
    /// (the first is the miner).
    pub fn new(wallet_names: &[&str]) -> Chain {
        assert!(!wallet_names.is_empty(), "a chain needs a miner wallet");
        let secp = Secp256k1::new();
        let wallets = wallet_names.iter().map(|n| Wallet::new(&secp, n)).collect();
        let genesis = genesis_block(Network::Regtest);
        let confirmed = genesis
            .txdata
            .iter()
            .enumerate()
            .map(|(pos, tx)| (tx.compute_txid(), (0, pos)))
            .collect();
        Chain {
            secp,
            blocks: vec![genesis],
            mempool: Vec::new(),
            wallets,
            generation: 0,
            tx_counter: 0,
            confirmed,
        }
    }

    /// A chain with the wallets "miner", "alice" and "bob" ([`MINER`], [`ALICE`], [`BOB`]).
    pub fn default_wallets() -> Chain {
        Chain::new(&["miner", "alice", "bob"])
    }

    /// The default funded chain used by [`crate::Harness`]: 110 blocks of coinbases, then
    /// three blocks of transactions between the miner, alice and bob spending and paying
    /// every script kind (each signing path used), and a mempool of five transactions with
    /// height 0 and height -1 (bob's P2WPKH has two of each).
    pub fn funded() -> Result<Chain, Error> {
        Chain::funded_with(1, 7)
    }

    /// [`Chain::funded`] with the amounts of the last two mempool transactions nudged by
    /// `nudge0` and `nudge1` satoshis (chosen so that the display-order and internal-order
    /// txid sorts differ inside both mempool height classes of bob's P2WPKH).
    fn funded_with(nudge0: u64, nudge1: u64) -> Result<Chain, Error> {
        let mut c = Chain::default_wallets();
        c.mine(110);
        // Miner funds every script of alice (one tx each) and bob (one tx, four outputs).
        for kind in ScriptKind::ALL {
            let to = c.wallets[ALICE].script(kind).to_owned();
            c.send(SendSpec::new(
                MINER,
                &to,
                Amount::from_btc(10.0).expect("amount"),
            ))?;
        }
        let bob = c.wallets[BOB].scripts();
        let mut spec = SendSpec::new(MINER, &bob[0], Amount::from_sat(500_000_000));
        for s in &bob[1..] {
            spec = spec.pay(s, Amount::from_sat(500_000_000));
        }
        c.send(spec)?;
        c.mine(1);
        // Each kind of alice pays a different kind of bob, and back.
        for (i, kind) in ScriptKind::ALL.into_iter().enumerate() {
            let to_kind = ScriptKind::ALL[(i + 1) % 4];
            let to = c.wallets[BOB].script(to_kind).to_owned();
            c.send(
                SendSpec::new(ALICE, &to, Amount::from_sat(100_000_000 + i as u64))
                    .from_kind(kind)
                    .change_kind(kind),
            )?;
        }
        c.mine(1);
        for (i, kind) in ScriptKind::ALL.into_iter().enumerate() {
            let to_kind = ScriptKind::ALL[(i + 2) % 4];
            let to = c.wallets[ALICE].script(to_kind).to_owned();
            c.send(
                SendSpec::new(BOB, &to, Amount::from_sat(30_000_000 + i as u64))
                    .from_kind(kind)
                    .change_kind(kind),
            )?;
        }
        c.mine(1);
        // Mempool: a height-0 tx, a height -1 tx spending its output, another height-0 tx.
        let bob_wpkh = c.wallets[BOB].script(ScriptKind::P2wpkh).to_owned();
        c.send(
            SendSpec::new(ALICE, &bob_wpkh, Amount::from_sat(70_000_000))
                .from_kind(ScriptKind::P2tr)
                .change_kind(ScriptKind::P2tr),
        )?;
        let alice_pkh = c.wallets[ALICE].script(ScriptKind::P2pkh).to_owned();
        c.send(
            SendSpec::new(BOB, &alice_pkh, Amount::from_sat(20_000_000))
                .from_kind(ScriptKind::P2wpkh)
                .order(CoinOrder::Newest)
                .change_kind(ScriptKind::P2tr),
        )?;
        let alice_sh = c.wallets[ALICE].script(ScriptKind::P2shP2wpkh).to_owned();
        c.send(SendSpec::new(
            MINER,
            &alice_sh,
            Amount::from_btc(2.0).expect("amount"),
        ))?;
        // Two of each height class on bob's P2WPKH, so the txid order inside a class matters.
        c.send(SendSpec::new(
            MINER,
            &bob_wpkh,
            Amount::from_sat(100_000_000 + nudge0),
        ))?;
        c.send(
            SendSpec::new(ALICE, &bob_wpkh, Amount::from_sat(10_000_000 + nudge1))
                .from_kind(ScriptKind::P2pkh)
                .order(CoinOrder::Newest)
                .change_kind(ScriptKind::P2pkh),
        )?;
        Ok(c)
    }

    /// The wallets (index 0 is the miner).
    pub fn wallets(&self) -> &[Wallet] {
        &self.wallets
    }

    /// The blocks, index = height.
    pub fn blocks(&self) -> &[Block] {
        &self.blocks
    }

    /// The mempool in arrival order (always topologically ordered).
    pub fn mempool(&self) -> &[Transaction] {
        &self.mempool
    }

    /// Tip height.
    pub fn height(&self) -> u32 {
        (self.blocks.len() - 1) as u32
    }

    /// Tip block.
    pub fn tip(&self) -> &Block {
        self.blocks.last().expect("genesis")
    }

    /// Height of the block with hash `hash` on the active chain.
    pub fn block_height(&self, hash: &BlockHash) -> Option<u32> {
        self.blocks
            .iter()
            .position(|b| b.block_hash() == *hash)
            .map(|h| h as u32)
    }

    /// Finds a transaction in the chain or the mempool.
    pub fn find_tx(&self, txid: &Txid) -> Option<(&Transaction, TxLocation)> {
        if let Some(&(height, pos)) = self.confirmed.get(txid) {
            let tx = &self.blocks[height as usize].txdata[pos];
            return Some((tx, TxLocation::Block { height, pos }));
        }
        self.mempool
            .iter()
            .enumerate()
            .find(|(_, tx)| tx.compute_txid() == *txid)
            .map(|(index, tx)| (tx, TxLocation::Mempool { index }))
    }

    fn index(&self) -> Index {
        let mut ix = Index {
            outputs: HashMap::new(),
            spent_by: HashMap::new(),
            txs: HashMap::new(),
        };
        let confirmed = self.blocks.iter().enumerate().flat_map(|(h, b)| {
            b.txdata.iter().enumerate().map(move |(pos, tx)| {
                let loc = TxLocation::Block {
                    height: h as u32,
                    pos,
                };
                (tx, loc)
            })
        });
        let mempool = self
            .mempool
            .iter()
            .enumerate()
            .map(|(index, tx)| (tx, TxLocation::Mempool { index }));
        for (tx, loc) in confirmed.chain(mempool) {
            let txid = tx.compute_txid();
            ix.txs.insert(txid, loc);
            let cb = tx.is_coinbase();
            if !cb {
                for input in &tx.input {
                    ix.spent_by.insert(input.previous_output, (txid, loc));
                }
            }
            for (vout, out) in tx.output.iter().enumerate() {
                let op = OutPoint::new(txid, vout as u32);
                ix.outputs.insert(op, (out.clone(), loc, cb));
            }
        }
        ix
    }

    /// Electrum height of a mempool transaction: -1 if it spends another mempool
    /// transaction's output, else 0.
    pub fn mempool_height(&self, tx: &Transaction) -> i64 {
        let ids: HashSet<Txid> = self.mempool.iter().map(|t| t.compute_txid()).collect();
        if tx
            .input
            .iter()
            .any(|i| ids.contains(&i.previous_output.txid))
        {
            -1
        } else {
            0
        }
    }

    // ----- records -----

    /// The Electrum history of `script` as ElectrumX orders it: confirmed transactions by
    /// (height, position in block), then mempool transactions by (height == -1, display txid).
    pub fn history(&self, script: &Script) -> Vec<(Txid, i64)> {
        let ix = self.index();
        let touches = |tx: &Transaction| {
            tx.output
                .iter()
                .any(|o| o.script_pubkey.as_script() == script)
                || (!tx.is_coinbase()
                    && tx.input.iter().any(|i| {
                        ix.outputs
                            .get(&i.previous_output)
                            .is_some_and(|(o, _, _)| o.script_pubkey.as_script() == script)
                    }))
        };
        let mut out = Vec::new();
        for (h, block) in self.blocks.iter().enumerate() {
            for tx in &block.txdata {
                if touches(tx) {
                    out.push((tx.compute_txid(), h as i64));
                }
            }
        }
        let mut mem: Vec<(Txid, i64)> = self
            .mempool
            .iter()
            .filter(|tx| touches(tx))
            .map(|tx| (tx.compute_txid(), self.mempool_height(tx)))
            .collect();
        mem.sort_by_key(|(txid, h)| (*h == -1, txid.to_string()));
        out.extend(mem);
        out
    }

    /// The Electrum status of `script` (§4.3): `None` for an empty history, else the hex
    /// SHA-256 of the concatenated `txid:height:` items.
    pub fn status(&self, script: &Script) -> Option<String> {
        status_of(&self.history(script))
    }

    /// The Electrum balance of `script`, computed as ElectrumX does.
    pub fn balance(&self, script: &Script) -> Balance {
        let ix = self.index();
        let mut confirmed = 0u64;
        for (op, (out, loc, _)) in &ix.outputs {
            if out.script_pubkey.as_script() != script || !matches!(loc, TxLocation::Block { .. }) {
                continue;
            }
            let spent_confirmed = ix
                .spent_by
                .get(op)
                .is_some_and(|(_, l)| matches!(l, TxLocation::Block { .. }));
            if !spent_confirmed {
                confirmed += out.value.to_sat();
            }
        }
        let mut unconfirmed = 0i64;
        for tx in &self.mempool {
            for input in &tx.input {
                if let Some((out, _, _)) = ix.outputs.get(&input.previous_output)
                    && out.script_pubkey.as_script() == script
                {
                    unconfirmed -= out.value.to_sat() as i64;
                }
            }
            for out in &tx.output {
                if out.script_pubkey.as_script() == script {
                    unconfirmed += out.value.to_sat() as i64;
                }
            }
        }
        Balance {
            confirmed,
            unconfirmed,
        }
    }

    /// The Electrum `listunspent` of `script`: outputs unspent by the chain and the mempool;
    /// confirmed ones first in chain order (then by output index), then mempool ones (height
    /// 0, even with unconfirmed parents) sorted by (txid, vout) — ElectrumX leaves the mempool
    /// part unordered, so compare it as a set.
    pub fn listunspent(&self, script: &Script) -> Vec<Utxo> {
        let ix = self.index();
        let mut items: Vec<(TxLocation, Utxo)> = ix
            .outputs
            .iter()
            .filter(|(op, (out, _, _))| {
                out.script_pubkey.as_script() == script && !ix.spent_by.contains_key(op)
            })
            .map(|(op, (out, loc, _))| {
                let height = match loc {
                    TxLocation::Block { height, .. } => *height,
                    TxLocation::Mempool { .. } => 0,
                };
                let utxo = Utxo {
                    txid: op.txid,
                    vout: op.vout,
                    height,
                    value: out.value.to_sat(),
                };
                (*loc, utxo)
            })
            .collect();
        items.sort_by(|(la, a), (lb, b)| match (la, lb) {
            (TxLocation::Mempool { .. }, TxLocation::Mempool { .. }) => {
                (a.txid.to_string(), a.vout).cmp(&(b.txid.to_string(), b.vout))
            }
            _ => (la, a.vout).cmp(&(lb, b.vout)),
        });
        items.into_iter().map(|(_, u)| u).collect()
    }

    /// The spend status of an outpoint as ElectrumX 2.0's `blockchain.outpoint.get_status`
    /// (protocol 1.7) reports it: heights are block heights, or 0 / -1 for mempool
    /// transactions (per [`Chain::mempool_height`]); `None` funder if the output does not
    /// exist.
    pub fn outpoint_status(&self, op: &OutPoint) -> OutpointStatus {
        let ix = self.index();
        let height_of = |loc: &TxLocation, txid: &Txid| match loc {
            TxLocation::Block { height, .. } => i64::from(*height),
            TxLocation::Mempool { .. } => {
                let (tx, _) = self.find_tx(txid).expect("indexed tx");
                self.mempool_height(tx)
            }
        };
        let Some((_, loc, _)) = ix.outputs.get(op) else {
            return OutpointStatus::default();
        };
        OutpointStatus {
            funder_height: Some(height_of(loc, &op.txid)),
            spender: ix
                .spent_by
                .get(op)
                .map(|(txid, l)| (*txid, height_of(l, txid))),
        }
    }

    // ----- building transactions -----

    /// Coins of wallet `from` (optionally of one kind) spendable in the next block, in the
    /// requested order: (outpoint, txout).
    pub fn spendable(
        &self,
        from: usize,
        kind: Option<ScriptKind>,
        order: CoinOrder,
    ) -> Vec<(OutPoint, TxOut)> {
        let ix = self.index();
        let wallet = &self.wallets[from];
        let next_height = self.height() + 1;
        let mut coins: Vec<(TxLocation, OutPoint, TxOut)> = ix
            .outputs
            .iter()
            .filter(|(op, (out, loc, cb))| {
                let mine = match kind {
                    Some(k) => out.script_pubkey == wallet.key(k).script_pubkey,
                    None => wallet.key_for_script(&out.script_pubkey).is_some(),
                };
                let mature = match (cb, loc) {
                    (true, TxLocation::Block { height, .. }) => {
                        next_height - height >= COINBASE_MATURITY
                    }
                    _ => true,
                };
                mine && mature && !ix.spent_by.contains_key(op)
            })
            .map(|(op, (out, loc, _))| (*loc, *op, out.clone()))
            .collect();
        coins.sort_by_key(|(loc, op, _)| (*loc, op.vout));
        if order == CoinOrder::Newest {
            coins.reverse();
        }
        coins.into_iter().map(|(_, op, out)| (op, out)).collect()
    }

    /// Builds and signs (but does not add) a transaction paying `spec.outputs` from wallet
    /// `spec.from`, with change back to the wallet, at [`FEE_RATE_SAT_VB`].
    pub fn build_tx(&mut self, spec: &SendSpec) -> Result<Transaction, Error> {
        let want: u64 = spec.outputs.iter().map(|(_, a)| a.to_sat()).sum();
        let coins = self.spendable(spec.from, spec.from_kind, spec.order);
        let change_kind = spec
            .change_kind
            .unwrap_or(ScriptKind::ALL[self.tx_counter % 4]);
        let change_script = self.wallets[spec.from].script(change_kind).to_owned();
        let mut selected = Vec::new();
        let mut total = 0u64;
        for coin in coins {
            total += coin.1.value.to_sat();
            selected.push(coin);
            // Generous fee bound for the check: 200 vB per input, 50 per output, 20 overhead.
            let bound = (20 + 200 * selected.len() as u64 + 50 * (spec.outputs.len() as u64 + 1))
                * FEE_RATE_SAT_VB;
            if total >= want + bound {
                break;
            }
        }
        let mut outputs: Vec<TxOut> = spec
            .outputs
            .iter()
            .map(|(s, a)| TxOut {
                value: *a,
                script_pubkey: s.clone(),
            })
            .collect();
        outputs.push(TxOut {
            value: Amount::ZERO,
            script_pubkey: change_script,
        });
        let mut tx = Transaction {
            version: TxVersion::TWO,
            lock_time: LockTime::ZERO,
            input: selected
                .iter()
                .map(|(op, _)| TxIn {
                    previous_output: *op,
                    script_sig: ScriptBuf::new(),
                    sequence: Sequence::ENABLE_RBF_NO_LOCKTIME,
                    witness: Witness::new(),
                })
                .collect(),
            output: outputs,
        };
        let prevouts: Vec<TxOut> = selected.iter().map(|(_, o)| o.clone()).collect();
        // Sign once to learn the size, then set the fee and sign for real.
        self.sign(spec.from, &mut tx, &prevouts)?;
        let fee = (tx.vsize() as u64 + 2) * FEE_RATE_SAT_VB;
        let Some(change) = total.checked_sub(want + fee) else {
            return Err(Error::msg(format!(
                "wallet {} has {} sat spendable{}, needs {} + fee {}",
                self.wallets[spec.from].name,
                total,
                spec.from_kind
                    .map(|k| format!(" in {}", k.name()))
                    .unwrap_or_default(),
                want,
                fee
            )));
        };
        if change < DUST {
            tx.output.pop();
        } else {
            tx.output.last_mut().expect("change").value = Amount::from_sat(change);
        }
        self.sign(spec.from, &mut tx, &prevouts)?;
        self.tx_counter += 1;
        Ok(tx)
    }

    fn sign(&self, from: usize, tx: &mut Transaction, prevouts: &[TxOut]) -> Result<(), Error> {
        let wallet = &self.wallets[from];
        let mut script_sigs = Vec::new();
        let mut witnesses = Vec::new();
        {
            let mut cache = SighashCache::new(&*tx);
            for (i, prev) in prevouts.iter().enumerate() {
                let key = wallet
                    .key_for_script(&prev.script_pubkey)
                    .ok_or_else(|| Error::msg("input not owned by the wallet"))?;
                let (script_sig, witness) =
                    sign_input(&self.secp, &mut cache, i, prev, prevouts, key)?;
                script_sigs.push(script_sig);
                witnesses.push(witness);
            }
        }
        for ((input, s), w) in tx.input.iter_mut().zip(script_sigs).zip(witnesses) {
            input.script_sig = s;
            input.witness = w;
        }
        Ok(())
    }

    /// Builds a transaction per `spec` and adds it to the mempool.
    pub fn send(&mut self, spec: SendSpec) -> Result<Txid, Error> {
        let tx = self.build_tx(&spec)?;
        self.accept(tx)
    }

    /// Gives the script of `kind` of wallet `to` a history of `n` transactions, cheaply: one
    /// payment from wallet `from` funds it, then `n - 1` self-payments follow in a chain (each
    /// spends the previous one's only output and pays the script back, less the fee at
    /// [`FEE_RATE_SAT_VB`]), and a block is mined after every `per_block` transactions and
    /// after the last (mining takes the whole mempool, so pending transactions are mined too).
    /// Returns the `n` txids in chain order; when the script had no history before, they are
    /// exactly its history.
    ///
    /// Linear in `n`: the chain of self-payments is signed and checked (signatures, values)
    /// here without [`Chain::send`], which rebuilds the whole output index per transaction
    /// and would be quadratic at the size this exists for (a 20,000-row history in seconds:
    /// `std-adapter/benches/vs_rust_electrum_client.rs`). Wallet `from` needs `n` x 1,000 +
    /// 100,000 sat spendable.
    ///
    /// # Errors
    /// `n` or `per_block` is 0, or `from` cannot pay for the funding.
    pub fn long_history(
        &mut self,
        from: usize,
        to: usize,
        kind: ScriptKind,
        n: usize,
        per_block: usize,
    ) -> Result<Vec<Txid>, Error> {
        if n == 0 || per_block == 0 {
            return Err(Error::msg("long_history: n and per_block must be positive"));
        }
        let script = self.wallets[to].script(kind).to_owned();
        let funding = Amount::from_sat(n as u64 * 1_000 + 100_000);
        let mut spec = SendSpec::new(from, &script, funding);
        if from == to {
            // The change must not pay the script, or the chain below would miss an output.
            spec = spec.change_kind(ScriptKind::ALL[(kind.index() + 1) % 4]);
        }
        let first = self.send(spec)?;
        let mut txids = Vec::with_capacity(n);
        txids.push(first);
        let mut prev = TxOut {
            value: funding,
            script_pubkey: script.clone(),
        };
        let mut outpoint = OutPoint::new(first, 0);
        let (funder, _) = self.find_tx(&first).expect("just sent");
        outpoint.vout = funder
            .output
            .iter()
            .position(|o| *o == prev)
            .expect("the funding output") as u32;
        let mut in_block = 1;
        for _ in 1..n {
            if in_block == per_block {
                self.mine(1);
                in_block = 0;
            }
            let mut tx = Transaction {
                version: TxVersion::TWO,
                lock_time: LockTime::ZERO,
                input: vec![TxIn {
                    previous_output: outpoint,
                    script_sig: ScriptBuf::new(),
                    sequence: Sequence::ENABLE_RBF_NO_LOCKTIME,
                    witness: Witness::new(),
                }],
                output: vec![TxOut {
                    value: prev.value,
                    script_pubkey: script.clone(),
                }],
            };
            let prevouts = [prev.clone()];
            // Sign once to learn the size, then set the fee and sign for real.
            self.sign(to, &mut tx, &prevouts)?;
            let fee = (tx.vsize() as u64 + 2) * FEE_RATE_SAT_VB;
            let value = prev.value.to_sat().checked_sub(fee).filter(|v| *v >= DUST);
            let value = value.ok_or_else(|| Error::msg("long_history: funding used up"))?;
            tx.output[0].value = Amount::from_sat(value);
            self.sign(to, &mut tx, &prevouts)?;
            verify_signatures(&self.secp, &tx, &prevouts)?;
            let txid = tx.compute_txid();
            self.mempool.push(tx.clone());
            txids.push(txid);
            outpoint = OutPoint::new(txid, 0);
            prev = tx.output.swap_remove(0);
            in_block += 1;
        }
        self.mine(1);
        Ok(txids)
    }

    /// Validates `tx` like `sendrawtransaction` (inputs exist and are unspent, coinbases
    /// mature, no conflicts, outputs not above inputs, and the signatures of the four kit
    /// script kinds verify) and adds it to the mempool. Returns its txid; a transaction
    /// already in the mempool is accepted again without change.
    pub fn accept(&mut self, tx: Transaction) -> Result<Txid, Error> {
        let txid = tx.compute_txid();
        let ix = self.index();
        match ix.txs.get(&txid) {
            Some(TxLocation::Mempool { .. }) => return Ok(txid),
            Some(TxLocation::Block { .. }) => {
                return Err(Error::rpc(-27, "Transaction outputs already in utxo set"));
            }
            None => {}
        }
        self.check_tx(&tx, &ix)?;
        self.mempool.push(tx);
        Ok(txid)
    }

    /// The checks of [`Chain::accept`] without adding the transaction.
    pub fn test_accept(&self, tx: &Transaction) -> Result<(), Error> {
        let ix = self.index();
        if ix.txs.contains_key(&tx.compute_txid()) {
            return Err(Error::rpc(-27, "txn-already-known"));
        }
        self.check_tx(tx, &ix)
    }

    fn check_tx(&self, tx: &Transaction, ix: &Index) -> Result<(), Error> {
        if tx.is_coinbase() {
            return Err(Error::rpc(-26, "coinbase"));
        }
        if tx.input.is_empty() {
            return Err(Error::rpc(-26, "bad-txns-vin-empty"));
        }
        if tx.output.is_empty() {
            return Err(Error::rpc(-26, "bad-txns-vout-empty"));
        }
        let mut seen = HashSet::new();
        let mut prevouts = Vec::new();
        let next_height = self.height() + 1;
        for input in &tx.input {
            if !seen.insert(input.previous_output) {
                return Err(Error::rpc(-26, "bad-txns-inputs-duplicate"));
            }
            let Some((out, loc, cb)) = ix.outputs.get(&input.previous_output) else {
                return Err(Error::rpc(-25, "bad-txns-inputs-missingorspent"));
            };
            match ix.spent_by.get(&input.previous_output) {
                Some((_, TxLocation::Block { .. })) => {
                    return Err(Error::rpc(-25, "bad-txns-inputs-missingorspent"));
                }
                Some((_, TxLocation::Mempool { .. })) => {
                    return Err(Error::rpc(-26, "txn-mempool-conflict"));
                }
                None => {}
            }
            if let (true, TxLocation::Block { height, .. }) = (cb, loc)
                && next_height - height < COINBASE_MATURITY
            {
                return Err(Error::rpc(-26, "bad-txns-premature-spend-of-coinbase"));
            }
            prevouts.push(out.clone());
        }
        let value_in: u64 = prevouts.iter().map(|o| o.value.to_sat()).sum();
        let value_out: u64 = tx.output.iter().map(|o| o.value.to_sat()).sum();
        if value_out > value_in {
            return Err(Error::rpc(-26, "bad-txns-in-belowout"));
        }
        verify_signatures(&self.secp, tx, &prevouts)
    }

    // ----- mining and reorgs -----

    /// Mines `n` blocks, each holding the whole mempool (the first one) or nothing.
    /// Returns the new block hashes.
    pub fn mine(&mut self, n: usize) -> Vec<BlockHash> {
        (0..n)
            .map(|_| {
                let txs = std::mem::take(&mut self.mempool);
                self.mine_block(txs, None)
            })
            .collect()
    }

    /// Mines one block holding the whole mempool, its coinbase paying `script` instead of
    /// the miner (an immature coinbase for a wallet under test).
    pub fn mine_to(&mut self, script: &Script) -> BlockHash {
        let txs = std::mem::take(&mut self.mempool);
        self.mine_block(txs, Some(script))
    }

    /// Mines `n` blocks with only a coinbase, leaving the mempool as it is.
    pub fn mine_empty(&mut self, n: usize) -> Vec<BlockHash> {
        (0..n).map(|_| self.mine_block(Vec::new(), None)).collect()
    }

    fn mine_block(&mut self, txs: Vec<Transaction>, coinbase_to: Option<&Script>) -> BlockHash {
        let height = self.height() + 1;
        let ix = self.index();
        // The block's own transactions may spend each other's outputs.
        let own: HashMap<OutPoint, u64> = txs
            .iter()
            .flat_map(|tx| {
                let txid = tx.compute_txid();
                tx.output
                    .iter()
                    .enumerate()
                    .map(move |(n, o)| (OutPoint::new(txid, n as u32), o.value.to_sat()))
            })
            .collect();
        let fees: u64 = txs
            .iter()
            .map(|tx| {
                let vin: u64 = tx
                    .input
                    .iter()
                    .map(|i| match own.get(&i.previous_output) {
                        Some(v) => *v,
                        None => ix.outputs[&i.previous_output].0.value.to_sat(),
                    })
                    .sum();
                vin - tx.output.iter().map(|o| o.value.to_sat()).sum::<u64>()
            })
            .sum();
        let subsidy = if height / 150 >= 64 {
            0
        } else {
            (50 * 100_000_000u64) >> (height / 150)
        };
        let miner_kind = ScriptKind::ALL[height as usize % 4];
        let mut tag = PushBytesBuf::new();
        tag.extend_from_slice(b"electrum-spv-testkit")
            .expect("short");
        let coinbase = Transaction {
            version: TxVersion::TWO,
            lock_time: LockTime::ZERO,
            input: vec![TxIn {
                previous_output: OutPoint::null(),
                script_sig: Builder::new()
                    .push_int(height as i64)
                    .push_int(self.generation as i64)
                    .push_slice(tag)
                    .into_script(),
                sequence: Sequence::MAX,
                witness: Witness::new(),
            }],
            output: vec![TxOut {
                value: Amount::from_sat(subsidy + fees),
                script_pubkey: coinbase_to
                    .unwrap_or_else(|| self.wallets[MINER].script(miner_kind))
                    .to_owned(),
            }],
        };
        let segwit = txs
            .iter()
            .any(|t| t.input.iter().any(|i| !i.witness.is_empty()));
        let mut txdata = vec![coinbase];
        txdata.extend(txs);
        let prev = self.tip().block_hash();
        let mut block = Block {
            header: Header {
                version: BlockVersion::from_consensus(0x2000_0000),
                prev_blockhash: prev,
                merkle_root: bitcoin::TxMerkleNode::all_zeros(),
                time: GENESIS_TIME + 600 * height,
                bits: CompactTarget::from_consensus(REGTEST_BITS),
                nonce: 0,
            },
            txdata,
        };
        if segwit {
            let reserved = [0u8; 32];
            let root = block.witness_root().expect("txs");
            let commitment = Block::compute_witness_commitment(&root, &reserved);
            let mut script = vec![0x6a, 0x24, 0xaa, 0x21, 0xa9, 0xed];
            script.extend_from_slice(commitment.as_byte_array());
            block.txdata[0].output.push(TxOut {
                value: Amount::ZERO,
                script_pubkey: ScriptBuf::from_bytes(script),
            });
            block.txdata[0].input[0].witness = Witness::from_slice(&[reserved]);
            debug_assert!(block.check_witness_commitment());
        }
        block.header.merkle_root = block.compute_merkle_root().expect("txs");
        let target = block.header.target();
        while block.header.validate_pow(target).is_err() {
            block.header.nonce += 1;
        }
        let hash = block.block_hash();
        for (pos, tx) in block.txdata.iter().enumerate() {
            self.confirmed.insert(tx.compute_txid(), (height, pos));
        }
        self.blocks.push(block);
        hash
    }

    /// Replaces the last `depth` blocks by `depth + 1` new coinbase-only blocks (so the new
    /// branch has more work). Their transactions go back to the mempool or are dropped per
    /// `txs`; mempool transactions whose inputs no longer exist are dropped.
    /// Returns the new block hashes.
    pub fn reorg(&mut self, depth: usize, txs: ReorgTxs) -> Vec<BlockHash> {
        assert!(
            depth >= 1 && depth < self.blocks.len(),
            "reorg depth out of range"
        );
        let removed = self.blocks.split_off(self.blocks.len() - depth);
        for tx in removed.iter().flat_map(|b| &b.txdata) {
            self.confirmed.remove(&tx.compute_txid());
        }
        self.generation += 1;
        if txs == ReorgTxs::ToMempool {
            let mut back: Vec<Transaction> = removed
                .into_iter()
                .flat_map(|b| b.txdata.into_iter().skip(1))
                .collect();
            back.append(&mut self.mempool);
            self.mempool = back;
        }
        let hashes = self.mine_empty(depth + 1);
        self.prune_mempool();
        hashes
    }

    /// Drops mempool transactions whose inputs are missing, spent, immature or conflicting.
    fn prune_mempool(&mut self) {
        let pending = std::mem::take(&mut self.mempool);
        for tx in pending {
            let ix = self.index();
            if self.check_tx(&tx, &ix).is_ok() {
                self.mempool.push(tx);
            }
        }
    }
}

/// The Electrum status of a history (PROTOCOL.md §4.3).
pub fn status_of(history: &[(Txid, i64)]) -> Option<String> {
    if history.is_empty() {
        return None;
    }
    let s: String = history.iter().map(|(t, h)| format!("{t}:{h}:")).collect();
    Some(sha256::Hash::hash(s.as_bytes()).to_string())
}

/// The Electrum script hash of `script`: SHA-256 of the script, byte-reversed, as hex.
pub fn scripthash(script: &Script) -> String {
    let mut h = sha256::Hash::hash(script.as_bytes()).to_byte_array();
    h.reverse();
    h.iter().map(|b| format!("{b:02x}")).collect()
}

fn sign_input(
    secp: &Secp256k1<All>,
    cache: &mut SighashCache<&Transaction>,
    i: usize,
    prev: &TxOut,
    prevouts: &[TxOut],
    key: &WalletKey,
) -> Result<(ScriptBuf, Witness), Error> {
    let err = |e: &dyn fmt::Display| Error::msg(format!("sighash: {e}"));
    let pk = key.public_key;
    Ok(match key.kind {
        ScriptKind::P2pkh => {
            let sighash = cache
                .legacy_signature_hash(i, &prev.script_pubkey, EcdsaSighashType::All.to_u32())
                .map_err(|e| err(&e))?;
            let msg = Message::from_digest(sighash.to_byte_array());
            let sig =
                bitcoin::ecdsa::Signature::sighash_all(secp.sign_ecdsa(&msg, &key.secret_key));
            let mut sig_push = PushBytesBuf::new();
            sig_push.extend_from_slice(&sig.to_vec()).expect("short");
            let script_sig = Builder::new()
                .push_slice(sig_push)
                .push_slice(pk.to_bytes())
                .into_script();
            (script_sig, Witness::new())
        }
        ScriptKind::P2wpkh | ScriptKind::P2shP2wpkh => {
            let wpkh = ScriptBuf::new_p2wpkh(&pk.wpubkey_hash());
            let sighash = cache
                .p2wpkh_signature_hash(i, &wpkh, prev.value, EcdsaSighashType::All)
                .map_err(|e| err(&e))?;
            let msg = Message::from_digest(sighash.to_byte_array());
            let sig =
                bitcoin::ecdsa::Signature::sighash_all(secp.sign_ecdsa(&msg, &key.secret_key));
            let script_sig = if key.kind == ScriptKind::P2shP2wpkh {
                let mut redeem = PushBytesBuf::new();
                redeem.extend_from_slice(wpkh.as_bytes()).expect("short");
                Builder::new().push_slice(redeem).into_script()
            } else {
                ScriptBuf::new()
            };
            (script_sig, Witness::p2wpkh(&sig, &pk.0))
        }
        ScriptKind::P2tr => {
            let sighash = cache
                .taproot_key_spend_signature_hash(
                    i,
                    &Prevouts::All(prevouts),
                    TapSighashType::Default,
                )
                .map_err(|e| err(&e))?;
            let msg = Message::from_digest(sighash.to_byte_array());
            let keypair = Keypair::from_secret_key(secp, &key.secret_key);
            let tweaked = keypair.tap_tweak(secp, None).to_keypair();
            let signature = secp.sign_schnorr_no_aux_rand(&msg, &tweaked);
            let sig = bitcoin::taproot::Signature {
                signature,
                sighash_type: TapSighashType::Default,
            };
            (ScriptBuf::new(), Witness::p2tr_key_spend(&sig))
        }
    })
}

/// Verifies the signatures of inputs spending the four kit script kinds (any key, not only
/// kit wallets'); inputs of other script types are accepted unchecked.
fn verify_signatures(
    secp: &Secp256k1<All>,
    tx: &Transaction,
    prevouts: &[TxOut],
) -> Result<(), Error> {
    let reject =
        |why: &str| Error::rpc(-26, &format!("mandatory-script-verify-flag-failed ({why})"));
    let mut cache = SighashCache::new(tx);
    for (i, (input, prev)) in tx.input.iter().zip(prevouts).enumerate() {
        let spk = &prev.script_pubkey;
        if spk.is_p2pkh() {
            let pushes: Vec<Vec<u8>> = input
                .script_sig
                .instructions()
                .filter_map(|ins| ins.ok()?.push_bytes().map(|p| p.as_bytes().to_vec()))
                .collect();
            let [sig, pk] = pushes.as_slice() else {
                return Err(reject("p2pkh scriptSig"));
            };
            let pk = bitcoin::PublicKey::from_slice(pk).map_err(|_| reject("pubkey"))?;
            if ScriptBuf::new_p2pkh(&pk.pubkey_hash()) != *spk {
                return Err(reject("pubkey hash"));
            }
            let sig = bitcoin::ecdsa::Signature::from_slice(sig)
                .map_err(|_| reject("signature encoding"))?;
            let sighash = cache
                .legacy_signature_hash(i, spk, sig.sighash_type.to_u32())
                .map_err(|_| reject("sighash"))?;
            let msg = Message::from_digest(sighash.to_byte_array());
            secp.verify_ecdsa(&msg, &sig.signature, &pk.inner)
                .map_err(|_| reject("signature"))?;
        } else if spk.is_p2wpkh() || spk.is_p2sh() {
            let program = if spk.is_p2sh() {
                let redeem = input.script_sig.as_bytes();
                // A single push of a 22-byte P2WPKH program.
                if redeem.len() != 23 || redeem[0] != 22 {
                    continue;
                }
                let inner = ScriptBuf::from_bytes(redeem[1..].to_vec());
                if ScriptBuf::new_p2sh(&inner.script_hash()) != *spk || !inner.is_p2wpkh() {
                    return Err(reject("redeem script"));
                }
                inner
            } else {
                spk.clone()
            };
            let w: Vec<&[u8]> = input.witness.iter().collect();
            let [sig, pk] = w.as_slice() else {
                return Err(reject("p2wpkh witness"));
            };
            let pk = CompressedPublicKey::from_slice(pk).map_err(|_| reject("pubkey"))?;
            if ScriptBuf::new_p2wpkh(&pk.wpubkey_hash()) != program {
                return Err(reject("witness program"));
            }
            let sig = bitcoin::ecdsa::Signature::from_slice(sig)
                .map_err(|_| reject("signature encoding"))?;
            let sighash = cache
                .p2wpkh_signature_hash(i, &program, prev.value, sig.sighash_type)
                .map_err(|_| reject("sighash"))?;
            let msg = Message::from_digest(sighash.to_byte_array());
            secp.verify_ecdsa(&msg, &sig.signature, &pk.0)
                .map_err(|_| reject("signature"))?;
        } else if spk.is_p2tr() {
            if input.witness.len() != 1 {
                continue; // script path: not checked
            }
            let sig = bitcoin::taproot::Signature::from_slice(&input.witness[0])
                .map_err(|_| reject("schnorr signature encoding"))?;
            let key = XOnlyPublicKey::from_slice(&spk.as_bytes()[2..34])
                .map_err(|_| reject("output key"))?;
            let sighash = cache
                .taproot_key_spend_signature_hash(i, &Prevouts::All(prevouts), sig.sighash_type)
                .map_err(|_| reject("sighash"))?;
            let msg = Message::from_digest(sighash.to_byte_array());
            secp.verify_schnorr(&sig.signature, &msg, &key)
                .map_err(|_| reject("schnorr signature"))?;
        }
    }
    Ok(())
}

/// The serialized size of a block, for RPC results.
pub(crate) fn block_size(block: &Block) -> usize {
    serialize(block).len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn funded_chain_is_deterministic_and_uses_every_kind() {
        let a = Chain::funded().expect("funded");
        let b = Chain::funded().expect("funded");
        assert_eq!(a.tip().block_hash(), b.tip().block_hash());
        assert_eq!(a.mempool(), b.mempool());
        let wpkh = a.wallets()[BOB].script(ScriptKind::P2wpkh).to_owned();
        let mem: Vec<i64> = a
            .history(&wpkh)
            .iter()
            .map(|x| x.1)
            .filter(|h| *h <= 0)
            .collect();
        assert_eq!(mem, vec![0, 0, -1, -1]);
        // Inside both height classes, display-order and internal-order sorts disagree, so a
        // server sorting by internal bytes (romanz/electrs) would differ from the records.
        let hist = a.history(&wpkh);
        let mem: Vec<&(Txid, i64)> = hist.iter().filter(|x| x.1 <= 0).collect();
        assert!(mem[0].0.to_byte_array() > mem[1].0.to_byte_array());
        assert!(mem[2].0.to_byte_array() > mem[3].0.to_byte_array());
        // Every kind of alice and bob was spent in a confirmed transaction.
        for w in [ALICE, BOB] {
            for kind in ScriptKind::ALL {
                let script = a.wallets()[w].script(kind).to_owned();
                let spent = a.blocks().iter().flat_map(|b| &b.txdata).any(|tx| {
                    !tx.is_coinbase()
                        && tx.input.iter().any(|i| {
                            a.find_tx(&i.previous_output.txid).is_some_and(|(p, _)| {
                                p.output[i.previous_output.vout as usize].script_pubkey == script
                            })
                        })
                });
                assert!(spent, "{} {} never spent", a.wallets()[w].name, kind.name());
            }
        }
    }

    #[test]
    fn tampered_transactions_are_rejected() {
        let mut c = Chain::funded().expect("funded");
        for kind in ScriptKind::ALL {
            let to = c.wallets()[BOB].script(ScriptKind::P2pkh).to_owned();
            let tx = c
                .build_tx(&SendSpec::new(ALICE, &to, Amount::from_sat(1_000_000)).from_kind(kind))
                .expect("build");
            assert!(c.test_accept(&tx).is_ok(), "{}", kind.name());
            let mut bad = tx.clone();
            bad.output[0].value = Amount::from_sat(1_000_001);
            let err = c.test_accept(&bad).expect_err(kind.name());
            assert_eq!(err.code, Some(-26), "{}: {err}", kind.name());
        }
    }

    #[test]
    fn reorg_moves_or_drops_transactions() {
        let mut c = Chain::funded().expect("funded");
        c.mine(1);
        let mined: Vec<Txid> = c.tip().txdata[1..]
            .iter()
            .map(|t| t.compute_txid())
            .collect();
        let h = c.height();
        let mut keep = c.clone();
        keep.reorg(2, ReorgTxs::ToMempool);
        assert_eq!(keep.height(), h + 1);
        let in_pool: Vec<Txid> = keep.mempool().iter().map(|t| t.compute_txid()).collect();
        assert!(mined.iter().all(|t| in_pool.contains(t)));
        c.reorg(2, ReorgTxs::Drop);
        assert_eq!(c.height(), h + 1);
        assert!(mined.iter().all(|t| c.find_tx(t).is_none()));
    }

    #[test]
    fn long_history_is_the_scripts_history_in_blocks() {
        let mut c = Chain::default_wallets();
        c.mine(101);
        let start = c.height();
        let txids = c
            .long_history(MINER, ALICE, ScriptKind::P2wpkh, 7, 3)
            .expect("long history");
        assert_eq!(txids.len(), 7);
        assert!(c.mempool().is_empty());
        assert_eq!(c.height(), start + 3, "blocks of 3, 3 and 1");
        let script = c.wallets()[ALICE].script(ScriptKind::P2wpkh).to_owned();
        let expected: Vec<(Txid, i64)> = txids
            .iter()
            .enumerate()
            .map(|(i, t)| (*t, i64::from(start) + 1 + i as i64 / 3))
            .collect();
        assert_eq!(c.history(&script), expected);
        // Every one of them is found by the txid index and would be accepted again.
        for t in &txids {
            assert!(matches!(c.find_tx(t), Some((_, TxLocation::Block { .. }))));
        }
        c.reorg(2, ReorgTxs::ToMempool);
        assert_eq!(c.mempool().len(), 4, "the last 4 are back in the mempool");
        assert!(matches!(
            c.find_tx(&txids[6]),
            Some((_, TxLocation::Mempool { index: 3 }))
        ));
        assert!(
            c.long_history(MINER, ALICE, ScriptKind::P2tr, 0, 3)
                .is_err()
        );
    }

    #[test]
    fn status_matches_protocol_vector() {
        // PROTOCOL.md §4.3 string form: "txid:height:" items, SHA-256, hex not reversed.
        let txid: Txid = "a2a8d2ee4c5be5b6dd69bc6e95e0e4dea5d28cab0e8f6c9a5b1ed7b6b1c7a111"
            .parse()
            .expect("txid");
        let s = format!("{txid}:5:");
        assert_eq!(
            status_of(&[(txid, 5)]),
            Some(sha256::Hash::hash(s.as_bytes()).to_string())
        );
        assert_eq!(status_of(&[]), None);
    }
}
