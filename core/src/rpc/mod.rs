//! JSON-RPC bookkeeping for the Electrum protocol: versions, the method catalogue, requests in
//! flight.

pub mod method;
#[cfg(feature = "_test_exports")]
#[doc(hidden)]
pub mod pending;
#[cfg(not(feature = "_test_exports"))]
mod pending;
pub mod version;

pub use method::{Method, NotificationKind};
pub use pending::PendingSlot;
pub(crate) use pending::PendingTable;
#[cfg(feature = "_test_exports")]
pub use pending::{Pending, PendingError};
pub use version::{ProtocolVersion, VersionParseError, VersionRange};
