//! Protocol versions as number tuples, and the range a client asks for.

use core::fmt;

/// An Electrum protocol version, compared as a number tuple: `"1.7" == "1.7.0"`,
/// `"1.4.2" > "1.4"`, `"1.10" > "1.9"` (PROTOCOL.md §2.2).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct ProtocolVersion {
    /// First component.
    pub major: u16,
    /// Second component (0 if absent).
    pub minor: u16,
    /// Third component (0 if absent).
    pub revision: u16,
}

/// Why a version string could not be read.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct VersionParseError;

impl fmt::Display for VersionParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not a protocol version (one to three dot-separated numbers)")
    }
}

#[cfg(feature = "std")]
impl std::error::Error for VersionParseError {}

impl ProtocolVersion {
    /// 1.4: the oldest version this client speaks (`cp_height`, only-first `server.version`).
    pub const V1_4: ProtocolVersion = ProtocolVersion::new(1, 4, 0);
    /// 1.4.2: `blockchain.scripthash.unsubscribe`.
    pub const V1_4_2: ProtocolVersion = ProtocolVersion::new(1, 4, 2);
    /// 1.6: `headers` lists, canonical mempool order, `mempool.get_info`, no `relayfee`.
    pub const V1_6: ProtocolVersion = ProtocolVersion::new(1, 6, 0);
    /// 1.7: `blockchain.scriptpubkey.*`, `blockchain.outpoint.*`, ping with payload.
    pub const V1_7: ProtocolVersion = ProtocolVersion::new(1, 7, 0);

    /// A version from its components.
    pub const fn new(major: u16, minor: u16, revision: u16) -> ProtocolVersion {
        ProtocolVersion {
            major,
            minor,
            revision,
        }
    }

    /// Parses `"1"`, `"1.4"` or `"1.4.2"` (ASCII digits only, no sign, no empty part, each
    /// component at most 65535).
    pub fn parse(s: &[u8]) -> Result<ProtocolVersion, VersionParseError> {
        let mut parts = [0u16; 3];
        for (i, part) in s.split(|&b| b == b'.').enumerate() {
            let slot = parts.get_mut(i).ok_or(VersionParseError)?;
            if part.is_empty() || part.len() > 5 || !part.iter().all(u8::is_ascii_digit) {
                return Err(VersionParseError);
            }
            let value = part
                .iter()
                .fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0'));
            *slot = u16::try_from(value).map_err(|_| VersionParseError)?;
        }
        Ok(ProtocolVersion::new(parts[0], parts[1], parts[2]))
    }

    /// Writes the shortest form (`1.4`, `1.4.2`) into `buf`, returning the used part.
    pub fn write_to<'b>(&self, buf: &'b mut [u8; 17]) -> &'b str {
        let mut len = 0;
        let parts = [self.major, self.minor, self.revision];
        let shown = if self.revision == 0 { 2 } else { 3 };
        for (i, part) in parts.iter().take(shown).enumerate() {
            if i > 0 {
                buf[len] = b'.';
                len += 1;
            }
            let mut digits = [0u8; 5];
            let mut n = *part;
            let mut d = digits.len();
            loop {
                d -= 1;
                digits[d] = b'0' + (n % 10) as u8;
                n /= 10;
                if n == 0 {
                    break;
                }
            }
            let width = digits.len() - d;
            buf[len..len + width].copy_from_slice(&digits[d..]);
            len += width;
        }
        // Only ASCII digits and dots were written.
        core::str::from_utf8(&buf[..len]).unwrap_or("")
    }
}

impl fmt::Display for ProtocolVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.write_to(&mut [0u8; 17]))
    }
}

/// The versions a client accepts: sent as `[min, max]` in `server.version`, and the reply must
/// lie within it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct VersionRange {
    /// Lowest acceptable version.
    pub min: ProtocolVersion,
    /// Highest acceptable version.
    pub max: ProtocolVersion,
}

impl VersionRange {
    /// 1.4 to 1.6: what every current server speaks. 1.7 is opt-in
    /// ([`VersionRange::WITH_1_7`]).
    pub const DEFAULT: VersionRange = VersionRange {
        min: ProtocolVersion::V1_4,
        max: ProtocolVersion::V1_6,
    };
    /// 1.4 to 1.7.
    pub const WITH_1_7: VersionRange = VersionRange {
        min: ProtocolVersion::V1_4,
        max: ProtocolVersion::V1_7,
    };

    /// The versions `min` to `max`, or `None` if the range is empty (`min > max`) or starts
    /// below 1.4, the oldest version this client speaks.
    pub fn new(min: ProtocolVersion, max: ProtocolVersion) -> Option<VersionRange> {
        if min > max || min < ProtocolVersion::V1_4 {
            return None;
        }
        Some(VersionRange { min, max })
    }

    /// Whether `v` is inside the range (bounds included).
    pub fn contains(&self, v: ProtocolVersion) -> bool {
        self.min <= v && v <= self.max
    }
}

impl Default for VersionRange {
    fn default() -> Self {
        VersionRange::DEFAULT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_compares_as_tuples() {
        let p = |s: &str| ProtocolVersion::parse(s.as_bytes());
        assert_eq!(p("1.7"), p("1.7.0"));
        assert!(p("1.4.2").unwrap() > p("1.4").unwrap());
        assert!(p("1.10").unwrap() > p("1.9").unwrap());
        assert_eq!(p("1"), Ok(ProtocolVersion::new(1, 0, 0)));
        for bad in [
            "", "1.", ".4", "1.4.2.1", "1.x", "-1.4", "1.4 ", "+1", "99999999", "1.65536",
        ] {
            assert_eq!(p(bad), Err(VersionParseError), "{bad:?}");
        }
    }

    #[test]
    fn displays_the_shortest_form() {
        assert_eq!(ProtocolVersion::V1_7.to_string(), "1.7");
        assert_eq!(ProtocolVersion::V1_4_2.to_string(), "1.4.2");
        assert_eq!(
            ProtocolVersion::new(65535, 65535, 65535).to_string(),
            "65535.65535.65535"
        );
    }

    #[test]
    fn ranges_are_not_empty_and_start_at_1_4() {
        use ProtocolVersion as V;
        assert_eq!(
            VersionRange::new(V::V1_4, V::V1_6),
            Some(VersionRange::DEFAULT)
        );
        assert_eq!(
            VersionRange::new(V::V1_6, V::V1_6).map(|r| r.min),
            Some(V::V1_6)
        );
        assert_eq!(VersionRange::new(V::V1_6, V::V1_4), None);
        assert_eq!(VersionRange::new(V::new(1, 3, 0), V::V1_6), None);
    }

    #[test]
    fn ranges_include_their_bounds() {
        let r = VersionRange::DEFAULT;
        assert!(r.contains(ProtocolVersion::V1_4) && r.contains(ProtocolVersion::V1_6));
        assert!(r.contains(ProtocolVersion::new(1, 5, 0)));
        assert!(!r.contains(ProtocolVersion::V1_7) && !r.contains(ProtocolVersion::new(1, 3, 9)));
    }
}
