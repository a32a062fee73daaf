//! JSON-RPC bookkeeping for the Electrum protocol: versions, the method catalogue, requests in
//! flight.

pub mod method;
pub mod pending;
pub mod version;

pub use method::{Method, NotificationKind};
pub use pending::{Pending, PendingError, PendingTable};
pub use version::{ProtocolVersion, VersionParseError, VersionRange};
