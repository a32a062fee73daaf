//! Fuzz target `p2p_peer`: a ready `Peer` fed arbitrary bytes, every event routed as an
//! adapter would route it.
//!
//! Setup (fixed): a mainnet `Peer` is brought to Ready with a valid handshake (the remote's
//! `version`, `wtxidrelay` and `sendaddrv2` when it speaks 70016, `verack`); a
//! `BroadcastTable` holds one broadcast (a fixed segwit transaction, recipients nodes 0 and 2,
//! announced to node 0 only); a `P2pHeaders` is anchored at mainnet genesis and its first
//! `getheaders` is sent, and so is a `ping`.
//!
//! Input: byte 0 says where the stream is cut in two; byte 1 picks who the remote is (bits 0-1:
//! node 0, announced to; 1, not a recipient; 2, a recipient not announced to), its protocol
//! version (bit 2: 70015, no `wtxidrelay`, as bcoin) and how the rest is read (bit 7 set:
//! records `[command index, length lo, length hi, payload...]`, each framed with a correct
//! header and checksum so the decoders behind it are reached; clear: a raw stream).
//!
//! Routing: `inv`, `getdata` and `notfound` items are collected and acted on at the list's end
//! (items are provisional until then): `getdata` entries go to `on_getdata` and a permit to
//! `serve_tx`, the rest answered with `notfound`; `inv` entries go to `on_inv`, then
//! `next_verification` may ask for the bytes; `notfound` to `on_notfound`; a `tx` to `on_tx`;
//! `reject` to `on_reject`; header events to `P2pHeaders` (its next request sent when it asks).
//!
//! Checked: nothing panics; `handle_input` consumes something or has an event waiting; the
//! events are the same whether the stream comes whole, cut where byte 0 says, or one byte at a
//! time (small inputs); a list's items match its count; a permit is given only to a node the
//! transaction was announced to, and its `tx` frame decodes (with the crate's own
//! `MessageReader`) to the bytes, txid and wtxid of the form asked; the peer's own outgoing
//! stream decodes cleanly and never holds a `tx`; confirmations never count a recipient and
//! only a non-recipient's bytes verify; the failure is reported exactly once.

#![no_main]

use electrum_spv_core::chain::{Anchor, HeaderVerifier, MAINNET};
use electrum_spv_core::hash::{Txid, Wtxid};
use electrum_spv_core::p2p::frame::write_header;
use electrum_spv_core::p2p::headers::HeadersStep;
use electrum_spv_core::p2p::peer::MIN_OUT_CAPACITY;
use electrum_spv_core::p2p::{
    BUFFER_SIZE, BroadcastTable, Command, GetData, HEADER_SIZE, InvSeen, InvType, InvVector, Magic,
    Message, MessageReader, NetAddr, NodeId, NodeSet, Outgoing, P2pHeaders, Peer, PeerConfig,
    PeerEvent, PeerStorage, SendError, TxForm, TxSeen, TxStatus, Version, WireTx, encode,
};
use libfuzzer_sys::fuzz_target;

const MAGIC: Magic = Magic::MAINNET;
/// Caller time while the stream is fed (constant, so runs at different cuts agree).
const NOW: u64 = 1_000;
const PING_NONCE: u64 = 0x1122_3344_5566_7788;
const OUR_NONCE: u64 = 0xaaaa_bbbb_cccc_dddd;

/// A signet segwit transaction (block 31500, one input with a one-item witness).
const SEGWIT_TX: &str = "0200000000010173219026eba80ff9c7ca506376aa8b7db9dc4b82924838989c21b9ad\
a48bd7cd0000000000ffffffff0106aac41d000000002200204ae81572f06e1b88fd5ced7a1a000945432e83e155\
1e6f721ee9c00b8cc3326001015100000000";
/// The same without marker, flag and witness.
const SEGWIT_TX_STRIPPED: &str = "020000000173219026eba80ff9c7ca506376aa8b7db9dc4b82924838989c2\
1b9ada48bd7cd0000000000ffffffff0106aac41d000000002200204ae81572f06e1b88fd5ced7a1a000945432e\
83e1551e6f721ee9c00b8cc3326000000000";

/// The command of a fuzzer's index: one named here, or `block` (a command not decoded).
fn command(index: usize) -> Command {
    let block = Command::Unknown(*b"block\0\0\0\0\0\0\0");
    Command::ALL
        .get(index % (Command::ALL.len() + 1))
        .copied()
        .unwrap_or(block)
}

fuzz_target!(|data: &[u8]| {
    let [cut_byte, mode, rest @ ..] = data else {
        return;
    };
    let setup = Setup {
        node: usize::from(mode & 3) % 3,
        version: if mode & 4 != 0 { 70015 } else { 70016 },
        out_capacity: MIN_OUT_CAPACITY + usize::from((mode >> 3) & 0xf) * 96,
    };
    let stream = if mode & 0x80 != 0 {
        records(rest)
    } else {
        rest.to_vec()
    };
    let whole = run(&setup, &stream, &[]);
    let cut = stream.len() * usize::from(*cut_byte) / 255;
    same(&run(&setup, &stream, &[cut]), &whole, "cut");
    if stream.len() <= 1024 {
        let every: Vec<usize> = (1..stream.len()).collect();
        same(&run(&setup, &stream, &every), &whole, "byte at a time");
    }
});

/// Two runs of one stream agree. Outgoing bytes are equal too, except that a failure drops
/// what was queued and not yet polled (documented: nothing is sent after a failure), and how
/// much that is depends on where the input was cut: then one stream is a prefix of the other.
fn same(a: &Outcome, b: &Outcome, how: &str) {
    assert_eq!(a.events, b.events, "{how}: events");
    assert_eq!(a.served, b.served, "{how}: served frames");
    assert_eq!(a.status, b.status, "{how}: table");
    if a.failed_while_fed {
        let n = a.sent.len().min(b.sent.len());
        assert_eq!(a.sent[..n], b.sent[..n], "{how}: outgoing bytes");
    } else {
        assert_eq!(a.sent, b.sent, "{how}: outgoing bytes");
    }
}

struct Setup {
    node: usize,
    version: i32,
    /// The peer's outgoing queue: its least size or larger.
    out_capacity: usize,
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// One frame of `command` around `payload`, with a correct header.
fn framed(command: Command, payload: &[u8], out: &mut Vec<u8>) {
    let mut header = [0u8; HEADER_SIZE];
    write_header(MAGIC, &command, payload, &mut header);
    out.extend_from_slice(&header);
    out.extend_from_slice(payload);
}

/// `[command index, length lo, length hi, payload...]` records, each framed.
fn records(mut rest: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let [index, lo, hi, tail @ ..] = rest {
        let len = usize::from(u16::from_le_bytes([*lo, *hi])).min(tail.len());
        let command = command(usize::from(*index));
        framed(command, &tail[..len], &mut out);
        rest = &tail[len..];
    }
    out
}

fn node(n: usize) -> NodeId {
    NodeId::new(n).unwrap()
}

/// What one run saw, compared across cuts.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    events: Vec<String>,
    sent: Vec<u8>,
    served: Vec<Vec<u8>>,
    status: String,
    failed_while_fed: bool,
}

struct Adapter<'t> {
    node: NodeId,
    recipients: NodeSet,
    peer: Peer<'static>,
    table: BroadcastTable<[TxStatus; 1]>,
    wire: WireTx<'t>,
    stripped: &'t [u8],
    headers: P2pHeaders,
    headers_faulted: bool,
    wtxid_relay: bool,
    /// The list being received and its items so far.
    list: Option<(Command, u32, Vec<InvVector>)>,
    events: Vec<String>,
    sent: Vec<u8>,
    served: Vec<Vec<u8>>,
    failures: usize,
}

fn run(setup: &Setup, stream: &[u8], cuts: &[usize]) -> Outcome {
    let raw = hex(SEGWIT_TX);
    let stripped = hex(SEGWIT_TX_STRIPPED);
    let wire = WireTx::parse(&raw).unwrap();
    let mut adapter = Adapter::new(setup, wire, &stripped);

    let mut start = 0;
    for end in cuts.iter().copied().chain([stream.len()]) {
        adapter.feed(&stream[start..end]);
        start = end;
    }
    // An empty feed may still end a list whose last item came with the last byte.
    adapter.feed(&[]);
    adapter.check_table();
    let failed_while_fed = adapter.failures > 0;

    // Past every deadline: an outstanding ping fails the peer (unless it failed already).
    adapter.peer.handle_timeout(at(u64::MAX));
    adapter.drain();
    assert!(
        adapter.failures <= 1,
        "failure reported {} times",
        adapter.failures
    );
    if adapter.peer.failure().is_some() {
        assert_eq!(adapter.failures, 1, "a failure not reported");
        assert!(adapter.peer.poll_event().is_none());
        assert_eq!(adapter.peer.handle_input(at(NOW), b"more"), 4);
        assert!(adapter.peer.poll_event().is_none());
        let mut buf = [0u8; 64];
        assert_eq!(adapter.peer.poll_transmit(&mut buf), 0);
    }

    // The peer's own stream: clean frames, never a `tx`.
    let mut reader = MessageReader::owned(MAGIC);
    let mut rest = &adapter.sent[..];
    loop {
        let (n, msg) = reader.feed(rest);
        rest = &rest[n..];
        match msg {
            Ok(None) => break,
            Ok(Some(Message::TxStart { .. } | Message::TxBytes(_) | Message::Tx { .. })) => {
                panic!("the peer's own stream holds a tx")
            }
            Ok(Some(_)) => {}
            Err(e) => panic!("the peer's own stream does not decode: {e:?}"),
        }
    }
    assert!(rest.is_empty());

    let status = format!("{:?}", adapter.table.entries().next().map(|(_, s)| *s));
    Outcome {
        events: adapter.events,
        sent: adapter.sent,
        served: adapter.served,
        status,
        failed_while_fed,
    }
}

impl<'t> Adapter<'t> {
    fn new(setup: &Setup, wire: WireTx<'t>, stripped: &'t [u8]) -> Adapter<'t> {
        let receiver = NetAddr {
            services: 0,
            ip: [0; 16],
            port: 8333,
        };
        let config = PeerConfig {
            magic: MAGIC,
            services: 8,
            receiver,
            user_agent: b"/fuzz:0/",
            start_height: 0,
            relay: false,
            unix_time: electrum_spv_core::time::UnixTime::from_secs(1_700_000_000),
            handshake_timeout: electrum_spv_core::time::Duration::from_millis(10_000),
            ping_timeout: electrum_spv_core::time::Duration::from_millis(20_000),
            request_timeout: electrum_spv_core::time::Duration::from_millis(5_000),
        };
        let storage = PeerStorage::new(vec![0; BUFFER_SIZE], vec![0; setup.out_capacity])
            .expect("sizes at their minimums or above");
        let mut peer = Peer::new(storage, config, at(0), OUR_NONCE);
        let version = Version {
            version: setup.version,
            services: 9,
            timestamp: 1_700_000_000,
            receiver,
            sender: receiver,
            nonce: 42,
            user_agent: b"/Satoshi:27.0.0/",
            start_height: 900_000,
            relay: Some(true),
            extra: &[],
        };
        let mut handshake = vec![0u8; 1024];
        let mut n = encode(MAGIC, &Outgoing::Version(version), &mut handshake).unwrap();
        if setup.version >= 70016 {
            n += encode(MAGIC, &Outgoing::WtxidRelay, &mut handshake[n..]).unwrap();
        }
        n += encode(MAGIC, &Outgoing::SendAddrV2, &mut handshake[n..]).unwrap();
        n += encode(MAGIC, &Outgoing::Verack, &mut handshake[n..]).unwrap();
        assert_eq!(peer.handle_input(at(0), &handshake[..n]), n);
        let info = match peer.poll_event() {
            Some(PeerEvent::Ready(info)) => info,
            other => panic!("handshake: {other:?}"),
        };
        assert_eq!(info.wtxid_relay, setup.version >= 70016);
        assert!(peer.poll_event().is_none());

        let recipients: NodeSet = [node(0), node(2)].into_iter().collect();
        let mut table = BroadcastTable::new(
            [TxStatus::default(); 1],
            electrum_spv_core::time::Duration::from_millis(2_000),
        );
        let handle = table.broadcast(&wire, recipients, at(0)).unwrap();
        // Announced to node 0 (on this connection if the remote is node 0).
        let inv = table.announce(handle, node(0), info.wtxid_relay).unwrap();
        assert!(table.announce(handle, node(1), false).is_none());
        let headers = P2pHeaders::new(HeaderVerifier::new(&MAINNET, Anchor::genesis(&MAINNET)));
        let mut adapter = Adapter {
            node: node(setup.node),
            recipients,
            peer,
            table,
            wire,
            stripped,
            headers,
            headers_faulted: false,
            wtxid_relay: info.wtxid_relay,
            list: None,
            events: Vec::new(),
            sent: Vec::new(),
            served: Vec::new(),
            failures: 0,
        };
        adapter.transmit();
        if setup.node == 0 {
            adapter.send(&Outgoing::Inv(&[inv]));
        }
        let request = adapter.headers.request();
        adapter.send(&request.outgoing());
        adapter.transmit();
        adapter.peer.ping(at(0), PING_NONCE).unwrap();
        adapter.transmit();
        adapter
    }

    fn transmit(&mut self) {
        let mut buf = [0u8; 97];
        loop {
            let n = self.peer.poll_transmit(&mut buf);
            if n == 0 {
                return;
            }
            self.sent.extend_from_slice(&buf[..n]);
        }
    }

    /// Sends `msg` with the outgoing buffer drained first: it fits unless the peer failed.
    fn send(&mut self, msg: &Outgoing<'_>) {
        self.transmit();
        match self.peer.send(at(NOW), msg) {
            Ok(()) => {}
            Err(SendError::NotReady) => assert!(self.peer.failure().is_some()),
            Err(e) => panic!("{:?}: {e:?}", msg.command()),
        }
        self.transmit();
    }

    fn feed(&mut self, mut rest: &[u8]) {
        // Each call consumes a byte or reports an event; bound the loop anyway.
        for _ in 0..=2 * rest.len() + 8 {
            let n = self.peer.handle_input(at(NOW), rest);
            assert!(n <= rest.len());
            rest = &rest[n..];
            let events = self.drain();
            if n == 0 && events == 0 {
                assert!(rest.is_empty(), "no progress and no event");
                return;
            }
        }
        panic!("handle_input did not finish its input");
    }

    /// Takes every waiting event and outgoing byte; returns how many events.
    fn drain(&mut self) -> usize {
        let mut count = 0;
        while let Some(event) = self.peer.poll_event() {
            count += 1;
            self.events.push(format!("{event:?}"));
            self.route(&event);
            self.transmit();
        }
        self.transmit();
        count
    }

    fn route(&mut self, event: &PeerEvent) {
        if !self.headers_faulted {
            match self.headers.handle(event) {
                Ok(Some(HeadersStep::More | HeadersStep::Unconnecting | HeadersStep::Lost)) => {
                    let request = self.headers.request();
                    self.send(&request.outgoing());
                }
                Ok(_) => {}
                // An adapter would drop the peer; the peer itself is still fuzzed.
                Err(_) => self.headers_faulted = true,
            }
        }
        match event {
            PeerEvent::Failed(_) => {
                self.failures += 1;
                self.list = None;
            }
            PeerEvent::Dropped(_) => self.list = None,
            PeerEvent::ListStart { command, count } => {
                assert!(self.list.is_none(), "a list starts inside a list");
                self.list = Some((*command, *count, Vec::new()));
            }
            PeerEvent::Inventory(inv) => {
                let list = self.list.as_mut().expect("an item outside a list");
                assert!(matches!(
                    list.0,
                    Command::Inv | Command::GetData | Command::NotFound
                ));
                list.2.push(*inv);
                assert!(list.2.len() <= list.1 as usize, "more items than the count");
            }
            PeerEvent::Header(_) => {
                let list = self.list.as_mut().expect("a header outside a list");
                assert_eq!(list.0, Command::Headers);
                list.1 = list.1.checked_sub(1).expect("more headers than the count");
            }
            PeerEvent::ListEnd { command } => {
                let (started, count, items) = self.list.take().expect("an end without a start");
                assert_eq!(started, *command);
                if *command == Command::Headers {
                    assert_eq!(count, 0, "fewer headers than the count");
                } else {
                    assert_eq!(items.len(), count as usize, "fewer items than the count");
                }
                self.list_end(*command, &items);
            }
            PeerEvent::Tx { txid, wtxid, .. } => self.on_tx(txid, wtxid),
            PeerEvent::Reject {
                hash: Some(hash), ..
            } => {
                let _ = self.table.on_reject(self.node, hash);
            }
            _ => {}
        }
    }

    fn list_end(&mut self, command: Command, items: &[InvVector]) {
        match command {
            Command::GetData => {
                let mut missing = Vec::new();
                for inv in items {
                    match self.table.on_getdata(self.node, inv) {
                        GetData::Serve(permit) => self.serve(inv, permit),
                        GetData::NotFound => missing.push(*inv),
                        GetData::Ignore => assert!(TxForm::of(inv.kind).is_none()),
                    }
                }
                for chunk in missing.chunks(10) {
                    self.send(&Outgoing::NotFound(chunk));
                }
            }
            Command::Inv => {
                for inv in items {
                    match self.table.on_inv(self.node, inv, at(NOW)) {
                        InvSeen::Announced { .. } => assert!(!self.recipients.contains(self.node)),
                        InvSeen::FromRecipient(_) => assert!(self.recipients.contains(self.node)),
                        InvSeen::Other => assert!(!self.wire.is_named_by(inv)),
                    }
                }
                let relay = self.wtxid_relay;
                if let Some((_, asked, inv)) = self.table.next_verification(at(NOW), |_| relay) {
                    assert_eq!(asked, self.node);
                    assert!(
                        !self.recipients.contains(asked),
                        "a recipient asked to verify"
                    );
                    self.send(&Outgoing::GetData(&[inv]));
                }
            }
            Command::NotFound => {
                for inv in items {
                    self.table.on_notfound(self.node, inv);
                }
            }
            _ => {}
        }
        self.check_table();
    }

    fn serve(&mut self, inv: &InvVector, permit: electrum_spv_core::p2p::ServePermit) {
        let status = *self
            .table
            .get(permit.handle())
            .expect("a permit names an entry");
        assert!(
            status.announced_to().contains(self.node),
            "a permit for a node never announced to"
        );
        assert_eq!(permit.inv(), *inv);
        assert!(self.wire.is_named_by(inv));
        let form = permit.form();
        assert_eq!(Some(form), TxForm::of(inv.kind));
        self.transmit();
        let frame = match self.peer.serve_tx(&permit, &self.wire) {
            Ok(frame) => frame,
            Err(SendError::NotReady) => {
                assert!(self.peer.failure().is_some());
                return;
            }
            Err(e) => panic!("serve_tx: {e:?}"),
        };
        let mut bytes = frame.header.to_vec();
        for piece in frame.payload {
            bytes.extend_from_slice(piece);
        }
        assert_eq!(bytes.len(), frame.len());

        // Decode it back with the crate's own reader.
        let mut reader = MessageReader::owned(MAGIC);
        let mut rest = &bytes[..];
        let mut body = Vec::new();
        let mut ids = None;
        loop {
            let (n, msg) = reader.feed(rest);
            rest = &rest[n..];
            match msg.expect("a served frame decodes") {
                None => break,
                Some(Message::TxStart { len }) => assert_eq!(len as usize, bytes.len() - 24),
                Some(Message::TxBytes(b)) => body.extend_from_slice(b),
                Some(Message::Tx { txid, wtxid, len }) => {
                    assert!(ids.is_none());
                    assert_eq!(len as usize, body.len());
                    ids = Some((txid, wtxid));
                }
                Some(other) => panic!("a served frame decodes to {other:?}"),
            }
        }
        let (txid, wtxid) = ids.expect("a whole tx");
        assert_eq!(txid, self.wire.txid());
        match form {
            TxForm::Witness => {
                assert_eq!(body, self.wire.raw());
                assert_eq!(wtxid, self.wire.wtxid());
                assert_ne!(wtxid.to_byte_array(), txid.to_byte_array());
            }
            TxForm::Stripped => {
                assert_eq!(body, self.stripped);
                assert_eq!(wtxid.to_byte_array(), txid.to_byte_array());
            }
        }
        if inv.kind == InvType::WTX {
            assert_eq!(inv.hash, wtxid.to_byte_array());
        } else {
            assert_eq!(inv.hash, txid.to_byte_array());
        }
        self.served.push(bytes);
    }

    fn on_tx(&mut self, txid: &Txid, wtxid: &Wtxid) {
        match self.table.on_tx(self.node, txid, wtxid) {
            TxSeen::Verified(h) => {
                assert_eq!(*txid, self.wire.txid());
                assert_eq!(*wtxid, self.wire.wtxid());
                assert!(!self.recipients.contains(self.node));
                assert_eq!(self.table.get(h).unwrap().verified_by(), Some(self.node));
            }
            TxSeen::Mismatch(h) => {
                assert_eq!(*txid, self.wire.txid());
                assert_ne!(*wtxid, self.wire.wtxid());
                assert!(
                    self.table
                        .get(h)
                        .unwrap()
                        .mismatched_by()
                        .contains(self.node)
                );
            }
            TxSeen::Other => {}
        }
        self.check_table();
    }

    fn check_table(&self) {
        for (_, status) in self.table.entries() {
            let by = status.announced_by();
            assert!(
                by.without(status.recipients()) == by,
                "a recipient counted as a confirmation"
            );
            assert!(status.confirmations() <= 1);
            if self.recipients.contains(self.node) {
                assert_eq!(status.confirmations(), 0);
            }
            assert!(
                status
                    .requested_by()
                    .without(status.announced_to())
                    .is_empty(),
                "requested by a node never announced to"
            );
            assert!(
                status
                    .announced_to()
                    .without(status.recipients())
                    .is_empty()
            );
            if let Some(v) = status.verified_by() {
                assert!(!status.recipients().contains(v));
            }
        }
    }
}

/// Caller time `ms` milliseconds after the origin.
fn at(ms: u64) -> electrum_spv_core::time::Instant {
    electrum_spv_core::time::Instant::from_millis(ms)
}
