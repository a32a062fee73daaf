//! The P2P paths that `benches/p2p.rs` times and `tests/p2p_alloc.rs` checks for heap
//! allocations: serving transactions (announce, the remote's `getdata`, the `tx` frame) and
//! decoding a 50,000-item `inv`. Everything is built before the measured calls; the measured
//! calls (`Serve::serve`, `Serve::serve_all`, `InvDecode::reader`, `InvDecode::peer`) only
//! touch what was built.

#![allow(dead_code)]

use electrum_spv_core::p2p::*;

pub const MAGIC: Magic = Magic::MAINNET;
/// The remote, as the table numbers it.
const REMOTE: usize = 0;
const NOW: u64 = 1_000;

fn config(user_agent: &'static [u8]) -> PeerConfig<'static> {
    PeerConfig {
        magic: MAGIC,
        services: 8,
        receiver: NetAddr {
            services: 0,
            ip: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1],
            port: 8333,
        },
        user_agent,
        start_height: 0,
        relay: true,
        unix_time: electrum_spv_core::time::UnixTime::from_secs(1_700_000_000),
        handshake_timeout: electrum_spv_core::time::Duration::from_millis(60_000),
        ping_timeout: electrum_spv_core::time::Duration::from_millis(60_000),
        request_timeout: electrum_spv_core::time::Duration::from_millis(60_000),
    }
}

/// Everything `from` has queued.
fn transmit(from: &mut Peer) -> Vec<u8> {
    let mut bytes = Vec::new();
    let mut buf = [0u8; 512];
    loop {
        let n = from.poll_transmit(&mut buf);
        if n == 0 {
            return bytes;
        }
        bytes.extend_from_slice(&buf[..n]);
    }
}

/// Feeds `bytes` to `to` as its contract asks; returns its events and what it sent meanwhile.
fn deliver(to: &mut Peer, bytes: &[u8]) -> (Vec<PeerEvent>, Vec<u8>) {
    let mut events = Vec::new();
    let mut sent = Vec::new();
    let mut rest = bytes;
    loop {
        let n = to.handle_input(at(NOW), rest);
        rest = &rest[n..];
        let mut any = false;
        while let Some(e) = to.poll_event() {
            any = true;
            events.push(e);
        }
        sent.extend(transmit(to));
        if rest.is_empty() && !any {
            return (events, sent);
        }
    }
}

/// Our peer and the remote's, both past the handshake (BIP339 negotiated).
pub fn ready_pair() -> (Peer<'static>, Peer<'static>) {
    let mut ours = Peer::new(
        PeerStorage::owned(),
        config(b"/electrum-spv:bench/"),
        at(0),
        1,
    );
    let mut remote = Peer::new(PeerStorage::owned(), config(b"/remote:bench/"), at(0), 2);
    let mut to_remote = transmit(&mut ours);
    for _ in 0..4 {
        let (_, back) = deliver(&mut remote, &std::mem::take(&mut to_remote));
        let mut back = back;
        back.extend(transmit(&mut remote));
        let (_, forth) = deliver(&mut ours, &back);
        to_remote = forth;
    }
    assert!(ours.is_ready() && remote.is_ready(), "handshake");
    assert!(ours.info().expect("ready").wtxid_relay);
    (ours, remote)
}

fn varint(n: usize, out: &mut Vec<u8>) {
    match n {
        0..=0xfc => out.push(n as u8),
        0xfd..=0xffff => {
            out.push(0xfd);
            out.extend_from_slice(&(n as u16).to_le_bytes());
        }
        _ => {
            out.push(0xfe);
            out.extend_from_slice(&(n as u32).to_le_bytes());
        }
    }
}

/// A legacy transaction of exactly `size` bytes (at least 250), distinct for each `seed`:
/// inputs with a 107-byte scriptSig (a P2PKH signature and key) and prevouts from `seed`, two
/// P2PKH outputs, the rest in the last input's scriptSig.
pub fn legacy_tx(seed: u32, size: usize) -> Vec<u8> {
    const INPUT: usize = 32 + 4 + 1 + 107 + 4;
    let fixed = 4 + 1 + 1 + 2 * (8 + 1 + 25) + 4;
    assert!(size >= 250);
    let mut inputs = (size - fixed) / INPUT;
    // Varint growth of the input count (at most 2 more bytes) comes out of the last input.
    let count_len = |n: usize| if n < 0xfd { 1 } else { 3 };
    while fixed - 1 + count_len(inputs) + inputs * INPUT > size {
        inputs -= 1;
    }
    let mut last_script = 107 + size - (fixed - 1 + count_len(inputs) + inputs * INPUT);
    // A scriptSig over 252 bytes takes a 3-byte length.
    if last_script > 0xfc {
        last_script -= 2;
    }
    let mut tx = Vec::with_capacity(size);
    tx.extend_from_slice(&2u32.to_le_bytes());
    varint(inputs, &mut tx);
    for i in 0..inputs {
        let mut prevout = [0u8; 32];
        prevout[..4].copy_from_slice(&seed.to_le_bytes());
        prevout[4..8].copy_from_slice(&(i as u32).to_le_bytes());
        prevout[31] = 1;
        tx.extend_from_slice(&prevout);
        tx.extend_from_slice(&0u32.to_le_bytes());
        let script = if i + 1 == inputs { last_script } else { 107 };
        varint(script, &mut tx);
        tx.extend((0..script).map(|b| (b as u8) ^ 0x5a));
        tx.extend_from_slice(&0xffff_fffeu32.to_le_bytes());
    }
    tx.push(2);
    for v in [50_000u64, 12_345] {
        tx.extend_from_slice(&v.to_le_bytes());
        tx.push(25);
        tx.extend_from_slice(&[0x76, 0xa9, 0x14]);
        tx.extend_from_slice(&[seed as u8; 20]);
        tx.extend_from_slice(&[0x88, 0xac]);
    }
    tx.extend_from_slice(&0u32.to_le_bytes());
    assert_eq!(tx.len(), size, "legacy_tx({seed}, {size})");
    tx
}

/// Serving transactions to a remote that asks for each at once: the table holds them all,
/// and the remote's `getdata` of each (made by a real [`Peer`] from our `inv`) is kept as
/// bytes.
pub struct Serve {
    pub peer: Peer<'static>,
    pub table: BroadcastTable<&'static mut [TxStatus]>,
    pub txs: Vec<WireTx<'static>>,
    pub handles: Vec<TxHandle>,
    /// The remote's `getdata` frame for each transaction.
    pub getdata: Vec<Vec<u8>>,
    /// Where the bytes for the connection go (our `inv`, then the `tx` frame).
    pub out: Vec<u8>,
    node: NodeId,
    wtxid_relay: bool,
}

impl Serve {
    /// `raws` in a table of exactly that many slots.
    pub fn new(raws: Vec<Vec<u8>>) -> Serve {
        let (mut ours, mut remote) = ready_pair();
        let slots: &'static mut [TxStatus] =
            Box::leak(vec![TxStatus::default(); raws.len()].into_boxed_slice());
        let mut table =
            BroadcastTable::new(slots, electrum_spv_core::time::Duration::from_secs(10));
        let node = NodeId::new(REMOTE).expect("id");
        let recipients: NodeSet = [node].into_iter().collect();
        let wtxid_relay = ours.info().expect("ready").wtxid_relay;
        let largest = raws.iter().map(Vec::len).max().unwrap_or(0);
        let mut txs = Vec::new();
        let mut handles = Vec::new();
        let mut getdata = Vec::new();
        for raw in raws {
            let raw: &'static [u8] = Box::leak(raw.into_boxed_slice());
            let tx = WireTx::parse(raw).expect("a transaction");
            let handle = table.broadcast(&tx, recipients, at(NOW)).expect("room");
            // The remote hears our `inv` and asks at once.
            let inv = table
                .announce(handle, node, wtxid_relay)
                .expect("recipient");
            ours.send(at(NOW), &Outgoing::Inv(&[inv])).expect("fits");
            let (events, _) = deliver(&mut remote, &transmit(&mut ours));
            let items: Vec<InvVector> = events
                .iter()
                .filter_map(|e| match e {
                    PeerEvent::Inventory(i) => Some(*i),
                    _ => None,
                })
                .collect();
            assert_eq!(items, [inv]);
            remote
                .send(at(NOW), &Outgoing::GetData(&items))
                .expect("fits");
            getdata.push(transmit(&mut remote));
            txs.push(tx);
            handles.push(handle);
        }
        Serve {
            peer: ours,
            table,
            txs,
            handles,
            getdata,
            out: vec![0; largest + HEADER_SIZE + 1024],
            node,
            wtxid_relay,
        }
    }

    /// One transaction, all of it: announce, `inv` out, the remote's `getdata` in, the permit,
    /// the `tx` frame written into `out`. Returns the bytes written for the connection.
    pub fn serve(&mut self, i: usize) -> usize {
        let inv = self
            .table
            .announce(self.handles[i], self.node, self.wtxid_relay)
            .expect("recipient");
        self.peer
            .send(at(NOW), &Outgoing::Inv(core::slice::from_ref(&inv)))
            .expect("fits");
        let mut written = self.peer.poll_transmit(&mut self.out);
        let mut permit = None;
        let mut rest: &[u8] = &self.getdata[i];
        loop {
            let n = self.peer.handle_input(at(NOW), rest);
            rest = &rest[n..];
            let mut any = false;
            while let Some(event) = self.peer.poll_event() {
                any = true;
                match event {
                    PeerEvent::ListStart { .. } => {}
                    PeerEvent::Inventory(item) => match self.table.on_getdata(self.node, &item) {
                        GetData::Serve(p) => permit = Some(p),
                        other => panic!("{other:?}"),
                    },
                    // Items are provisional until the list's checksum matched.
                    PeerEvent::ListEnd {
                        command: Command::GetData,
                    } => {
                        let permit = permit.take().expect("a permit");
                        let frame = self.peer.serve_tx(&permit, &self.txs[i]).expect("served");
                        written = 0;
                        self.out[..HEADER_SIZE].copy_from_slice(&frame.header);
                        written += HEADER_SIZE;
                        for piece in frame.payload {
                            self.out[written..written + piece.len()].copy_from_slice(piece);
                            written += piece.len();
                        }
                    }
                    other => panic!("{other:?}"),
                }
            }
            if rest.is_empty() && !any {
                return written;
            }
        }
    }

    /// Every transaction once, in order.
    pub fn serve_all(&mut self) -> usize {
        (0..self.txs.len()).map(|i| self.serve(i)).sum()
    }

    /// The bound: SHA-256d of every transaction's bytes (the `tx` frame's checksum).
    pub fn bound(&self) -> u8 {
        self.txs.iter().fold(0, |acc, tx| {
            acc ^ electrum_spv_core::hash::sha256d(tx.raw())[0]
        })
    }
}

/// A 50,000-item `inv` frame and the readers that decode it.
pub struct InvDecode {
    pub frame: Vec<u8>,
    pub reader: MessageReader<'static>,
    pub peer: Peer<'static>,
}

impl InvDecode {
    pub fn new(items: usize) -> InvDecode {
        let invs: Vec<InvVector> = (0..items as u32)
            .map(|i| InvVector {
                kind: InvType::WTX,
                hash: electrum_spv_core::hash::sha256d(&i.to_le_bytes()),
            })
            .collect();
        let mut frame = vec![0u8; HEADER_SIZE + 9 + items * INV_ITEM_SIZE as usize];
        let n = encode(MAGIC, &Outgoing::Inv(&invs), &mut frame).expect("encodes");
        frame.truncate(n);
        let (_, peer) = ready_pair();
        InvDecode {
            frame,
            reader: MessageReader::owned(MAGIC),
            peer,
        }
    }

    /// The payload (after the 24-byte header).
    pub fn payload(&self) -> &[u8] {
        &self.frame[HEADER_SIZE..]
    }

    /// Through the message reader: returns the items seen and an xor of their first bytes.
    pub fn reader(&mut self) -> (u32, u8) {
        let mut rest: &[u8] = &self.frame;
        let (mut count, mut acc, mut ended) = (0u32, 0u8, false);
        while !rest.is_empty() || !ended {
            let (n, msg) = self.reader.feed(rest);
            rest = &rest[n..];
            match msg.expect("valid inv") {
                Some(Message::Inventory(inv)) => {
                    count += 1;
                    acc ^= inv.hash[0];
                }
                Some(Message::ListStart { .. }) => {}
                Some(Message::ListEnd { .. }) => ended = true,
                Some(other) => panic!("{other:?}"),
                None => assert!(ended || !rest.is_empty(), "stalled"),
            }
        }
        (count, acc)
    }

    /// Through a ready [`Peer`], its events drained.
    pub fn peer(&mut self) -> (u32, u8) {
        let mut rest: &[u8] = &self.frame;
        let (mut count, mut acc, mut ended) = (0u32, 0u8, false);
        let mut sink = [0u8; 64];
        loop {
            let n = self.peer.handle_input(at(NOW), rest);
            rest = &rest[n..];
            let mut any = false;
            while let Some(event) = self.peer.poll_event() {
                any = true;
                match event {
                    PeerEvent::Inventory(inv) => {
                        count += 1;
                        acc ^= inv.hash[0];
                    }
                    PeerEvent::ListStart { .. } => {}
                    PeerEvent::ListEnd { .. } => ended = true,
                    other => panic!("{other:?}"),
                }
            }
            while self.peer.poll_transmit(&mut sink) > 0 {}
            if rest.is_empty() && !any {
                assert!(ended, "inv not ended");
                return (count, acc);
            }
        }
    }

    /// The bound: SHA-256d of the payload (the frame's checksum).
    pub fn bound(&self) -> u8 {
        electrum_spv_core::hash::sha256d(self.payload())[0]
    }
}

/// Caller time `ms` milliseconds after the origin.
fn at(ms: u64) -> electrum_spv_core::time::Instant {
    electrum_spv_core::time::Instant::from_millis(ms)
}
