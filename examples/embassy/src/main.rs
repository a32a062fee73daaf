//! electrum-spv over embassy-net on a NUCLEO-F429ZI (STM32F429ZI, Cortex-M4F, on-board LAN8742A
//! Ethernet PHY over RMII).
//!
//! The main task brings up the board's Ethernet and an embassy-net stack with a static IPv4
//! address, opens a `TcpSocket` to the configured Electrum server and runs electrum-spv-core's
//! `embedded-io-async` driver over it: version negotiation and the server's genesis checked
//! (`Driver::negotiate`), then the core's verified header sync (`HeaderSync`, fed through
//! `Driver::run_until`): `blockchain.headers.subscribe`, then every header from the latest
//! compiled-in checkpoint to the server's tip streamed and verified (links, proof of work,
//! retargets, checkpoints) in a session of a few KiB, then each new tip the server announces,
//! reorgs included. The verified height is in [`VERIFIED_HEIGHT`]; the LEDs show the state.
//!
//! Build-checked only: it has never run on a board (see README.md).

#![no_std]
#![no_main]

use core::cell::Cell;
use core::sync::atomic::{AtomicU32, Ordering};

use electrum_spv_core::chain::{Anchor, MAINNET, Params};
use electrum_spv_core::driver::{self, Driver};
use electrum_spv_core::session::{Config, PendingSlot, Session, SessionStorage};
use electrum_spv_core::sync::headers::{HeaderSync, SyncError, SyncEvent};
use electrum_spv_core::time;
use embassy_executor::Spawner;
use embassy_net::tcp::{ConnectError, TcpSocket};
use embassy_net::{Ipv4Address, Ipv4Cidr, Runner, Stack, StackResources, StaticConfigV4};
use embassy_stm32::eth::{self, Ethernet, GenericPhy, PacketQueue, Sma};
use embassy_stm32::gpio::{Level, Output, Speed};
use embassy_stm32::peripherals::{ETH, ETH_SMA, RNG};
use embassy_stm32::rng::{self, Rng};
use embassy_stm32::{Config as BoardConfig, bind_interrupts};
use embassy_time::{Duration, Instant, Timer, with_timeout};
use static_cell::StaticCell;

// ----- configuration: set these for your network -----

/// The network the server must be on (its genesis hash is checked) and whose headers are
/// verified, from its latest compiled-in checkpoint.
const NETWORK: &Params = &MAINNET;
/// The Electrum server, plain TCP. A placeholder (TEST-NET-1, RFC 5737): put your server's.
const SERVER: (Ipv4Address, u16) = (Ipv4Address::new(192, 0, 2, 10), 50001);
/// This device's address, prefix length and gateway: placeholders (TEST-NET-1).
const DEVICE: Ipv4Address = Ipv4Address::new(192, 0, 2, 50);
const PREFIX_LEN: u8 = 24;
const GATEWAY: Ipv4Address = Ipv4Address::new(192, 0, 2, 1);
/// A locally administered unicast MAC address.
const MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x45, 0x53, 0x50];

// ----- memory (all static or in the task's future; no heap) -----

/// The session's line buffer: the longest reply held whole. Header chunks are streamed item
/// by item, so 2 KiB is plenty for everything else the header sync asks.
const LINE: usize = 2048;
/// The session's outgoing queue.
const OUT: usize = 512;
/// Requests in flight.
const PENDING: usize = 4;
/// The driver's receive and transmit buffers (any size works; about one TCP segment).
const DRIVER_RX: usize = 1024;
const DRIVER_TX: usize = 256;
/// The TCP socket's buffers (smoltcp's receive window and send queue).
const SOCKET_RX: usize = 4096;
const SOCKET_TX: usize = 1024;

// ----- time -----

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const NEGOTIATE_TIMEOUT: Duration = Duration::from_secs(30);
/// smoltcp closes a connection silent this long; the session pings after 240 s idle.
const SOCKET_TIMEOUT: Duration = Duration::from_secs(300);
const RECONNECT_DELAY: Duration = Duration::from_secs(10);
/// Bounds of one wait for the server between two turns of the sync.
const MIN_WAIT_MS: u64 = 20;
const MAX_WAIT_MS: u64 = 60_000;

/// Height of the verified tip (0 until the first header is verified): what the rest of a
/// firmware, or a debugger, reads.
pub static VERIFIED_HEIGHT: AtomicU32 = AtomicU32::new(0);
/// Connections that ended in a failure.
pub static FAILURES: AtomicU32 = AtomicU32::new(0);
/// Why the last one ended.
static LAST_FAILURE: critical_section::Mutex<Cell<Option<Failure>>> =
    critical_section::Mutex::new(Cell::new(None));

bind_interrupts!(struct Irqs {
    ETH => eth::InterruptHandler;
    HASH_RNG => rng::InterruptHandler<RNG>;
});

type Device = Ethernet<'static, ETH, GenericPhy<Sma<'static, ETH_SMA>>>;
type Electrum<'a> = Driver<'a, 'a, TcpSocket<'a>, fn() -> time::Instant>;

/// Why a connection ended (kept in [`LAST_FAILURE`] for a debugger; nothing else reads the
/// details).
#[allow(dead_code)]
#[derive(Clone, Copy, Debug)]
enum Failure {
    /// The TCP connection could not be opened.
    Connect(ConnectError),
    /// Connecting or negotiating took too long.
    Timeout,
    /// The socket failed, the server closed it, or the session failed (wrong network, no
    /// common version).
    Driver(driver::Error<embassy_net::tcp::Error>),
    /// The header sync halted: the server lied (an invalid header, a malformed reply) or its
    /// chain forks deeper than can be compared.
    Sync(SyncError),
}

/// The NUCLEO's user LEDs: green = synced to a verified tip, blue = connected and negotiated,
/// red = the last connection failed (steady and no reconnect: the server lied).
struct Leds {
    green: Output<'static>,
    blue: Output<'static>,
    red: Output<'static>,
}

/// The session's clock: core's instant is embassy's milliseconds since boot.
fn clock() -> time::Instant {
    time::Instant::from_millis(Instant::now().as_millis())
}

/// The latest compiled-in checkpoint's period start, or genesis.
fn anchor() -> Anchor {
    NETWORK
        .last_checkpoint_height()
        .and_then(|h| h.checked_add(1))
        .and_then(|h| Anchor::at_height(NETWORK, h).ok())
        .unwrap_or_else(|| Anchor::genesis(NETWORK))
}

#[embassy_executor::task]
async fn net_task(mut runner: Runner<'static, Device>) -> ! {
    runner.run().await
}

#[embassy_executor::main]
async fn main(spawner: Spawner) {
    let p = embassy_stm32::init(board_config());
    let mut leds = Leds {
        green: Output::new(p.PB0, Level::Low, Speed::Low),
        blue: Output::new(p.PB7, Level::Low, Speed::Low),
        red: Output::new(p.PB14, Level::Low, Speed::Low),
    };

    // embassy-net's seed (TCP initial sequence numbers, local ports) from the hardware RNG.
    let mut rng = Rng::new(p.RNG, Irqs);
    let mut seed = [0u8; 8];
    if rng.async_fill_bytes(&mut seed).await.is_err() {
        leds.red.set_high();
    }

    static PACKETS: StaticCell<PacketQueue<4, 4>> = StaticCell::new();
    let device = Ethernet::new(
        PACKETS.init(PacketQueue::new()),
        p.ETH,
        Irqs,
        p.PA1,  // RMII REF_CLK
        p.PA7,  // RMII CRS_DV
        p.PC4,  // RMII RXD0
        p.PC5,  // RMII RXD1
        p.PG13, // RMII TXD0
        p.PB13, // RMII TXD1
        p.PG11, // RMII TX_EN
        MAC,
        p.ETH_SMA,
        p.PA2, // MDIO
        p.PC1, // MDC
    );
    let net_config = embassy_net::Config::ipv4_static(StaticConfigV4 {
        address: Ipv4Cidr::new(DEVICE, PREFIX_LEN),
        gateway: Some(GATEWAY),
        dns_servers: Default::default(),
    });
    static RESOURCES: StaticCell<StackResources<2>> = StaticCell::new();
    let (stack, runner) = embassy_net::new(
        device,
        net_config,
        RESOURCES.init(StackResources::new()),
        u64::from_le_bytes(seed),
    );
    match net_task(runner) {
        Ok(task) => spawner.spawn(task),
        Err(_) => return leds.red.set_high(),
    }
    stack.wait_config_up().await;

    // The verified chain outlives connections: a reconnect resumes from its tip.
    static SYNC: StaticCell<HeaderSync> = StaticCell::new();
    let sync = SYNC.init_with(|| HeaderSync::new(NETWORK, anchor()).with_streaming());
    loop {
        let failure = connection(stack, sync, &mut leds).await;
        FAILURES.fetch_add(1, Ordering::Relaxed);
        critical_section::with(|cs| LAST_FAILURE.borrow(cs).set(Some(failure)));
        leds.blue.set_low();
        leds.red.set_high();
        if let Failure::Sync(SyncError::ServerLied(_) | SyncError::ReorgTooDeep { .. }) = failure {
            // The only configured server lied: trust nothing more from it. A real firmware
            // would try another server (and `HeaderSync::reset_connection` then).
            leds.green.set_low();
            return;
        }
        Timer::after(RECONNECT_DELAY).await;
    }
}

/// One connection: connect, negotiate, then run the header sync until something fails.
async fn connection(stack: Stack<'static>, sync: &mut HeaderSync, leds: &mut Leds) -> Failure {
    let mut socket_rx = [0u8; SOCKET_RX];
    let mut socket_tx = [0u8; SOCKET_TX];
    let mut socket = TcpSocket::new(stack, &mut socket_rx, &mut socket_tx);
    socket.set_timeout(Some(SOCKET_TIMEOUT));
    match with_timeout(CONNECT_TIMEOUT, socket.connect(SERVER)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Failure::Connect(e),
        Err(_) => return Failure::Timeout,
    }

    let (mut line, mut out, mut slots) = ([0u8; LINE], [0u8; OUT], [PendingSlot::EMPTY; PENDING]);
    let storage = SessionStorage::new(&mut line, &mut out, &mut slots);
    let mut session = Session::new(storage, Config::new(NETWORK), clock());
    let mut rx = [0u8; DRIVER_RX];
    let mut tx = [0u8; DRIVER_TX];
    let mut electrum: Electrum<'_> = Driver::new(&mut session, socket, clock, &mut rx, &mut tx);
    match with_timeout(NEGOTIATE_TIMEOUT, electrum.negotiate()).await {
        Ok(Ok(_version)) => leds.blue.set_high(),
        Ok(Err(e)) => return Failure::Driver(e),
        Err(_) => return Failure::Timeout,
    }
    sync.reset_connection();
    follow(&mut electrum, sync, leds).await
}

/// Runs the header sync over the driver: the sync issues its requests into the session, the
/// driver writes them and hands every event to the sync. Each wait lasts until the session
/// (deadline, keep-alive ping) or the sync (request pacing) next needs a turn: the driver has
/// no timer, and a timeout dropping `run_until` is safe (see the driver's docs).
async fn follow(electrum: &mut Electrum<'_>, sync: &mut HeaderSync, leds: &mut Leds) -> Failure {
    loop {
        let now = clock();
        if let Err(e) = sync.poll(now, electrum.session_mut()) {
            return Failure::Sync(e);
        }
        let wake_at = [electrum.poll_timeout(), sync.poll_timeout()]
            .into_iter()
            .flatten()
            .min();
        let wait = wake_at
            .map_or(MAX_WAIT_MS, |t| (t - now).millis())
            .clamp(MIN_WAIT_MS, MAX_WAIT_MS);
        let turn = electrum.run_until(|event| sync.handle_event(clock(), event));
        let event = match with_timeout(Duration::from_millis(wait), turn).await {
            // Time for a turn: poll again (the next call also expires late requests and
            // sends the keep-alive ping).
            Err(_) => continue,
            Ok(Err(e)) => return Failure::Driver(e),
            Ok(Ok(event)) => event,
        };
        match event {
            SyncEvent::Progress { height } => {
                VERIFIED_HEIGHT.store(height, Ordering::Relaxed);
            }
            SyncEvent::Synced { tip } | SyncEvent::Reorg { new_tip: tip, .. } => {
                VERIFIED_HEIGHT.store(tip.height, Ordering::Relaxed);
                leds.green.set_high();
                leds.red.set_low();
            }
            SyncEvent::ServerLied(lie) => return Failure::Sync(SyncError::ServerLied(lie)),
            SyncEvent::ReorgTooDeep { below } => {
                return Failure::Sync(SyncError::ReorgTooDeep { below });
            }
            // A weaker branch announced (ours is kept), or a request failed (retried).
            SyncEvent::ForkRejected { .. } | SyncEvent::RequestFailed { .. } => {}
        }
    }
}

/// 180 MHz from the ST-LINK's 8 MHz clock (HSE bypass); 45 MHz PLL Q for the RNG.
fn board_config() -> BoardConfig {
    use embassy_stm32::rcc::{
        AHBPrescaler, APBPrescaler, Hse, HseMode, Pll, PllMul, PllPDiv, PllPreDiv, PllQDiv,
        PllSource, Sysclk,
    };
    use embassy_stm32::time::Hertz;

    let mut config = BoardConfig::default();
    config.rcc.hse = Some(Hse {
        freq: Hertz(8_000_000),
        mode: HseMode::Bypass,
    });
    config.rcc.pll_src = PllSource::HSE;
    config.rcc.pll = Some(Pll {
        prediv: PllPreDiv::DIV4,
        mul: PllMul::MUL180,
        divp: Some(PllPDiv::DIV2),
        divq: Some(PllQDiv::DIV8),
        divr: None,
    });
    config.rcc.ahb_pre = AHBPrescaler::DIV1;
    config.rcc.apb1_pre = APBPrescaler::DIV4;
    config.rcc.apb2_pre = APBPrescaler::DIV2;
    config.rcc.sys = Sysclk::PLL1_P;
    config
}

/// A panic (none is expected: the core and the driver return errors) resets the board.
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    cortex_m::peripheral::SCB::sys_reset()
}
