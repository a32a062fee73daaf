//! Verified headers on disk, for desktop use: an append-only file that survives crashes.
//!
//! The file is a sequence of 88-byte records: the 80-byte header, its height (4 bytes, little
//! endian) and a check (the first 4 bytes of SHA-256 of the 84 bytes before it). Records are
//! only ever appended, then `fsync`ed. On open:
//!
//! * a torn write (a partial last record, or a last run of records whose checks fail because
//!   the machine died mid-write) is detected and truncated away;
//! * a record that fails its check *before* valid ones is corruption, not a torn write, and is
//!   an error ([`Error::Store`]), never silently dropped.
//!
//! Headers of a fork are appended like any others, so both branches stay on disk until the
//! [`HeaderChain`](crate::HeaderChain) that owns the store has resolved them by cumulative
//! work; it then rewrites the file with the winning branch only (write to a temporary file,
//! `fsync`, rename).

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::Error;

/// Bytes per record.
pub const RECORD: usize = 88;

/// Largest file opened: 32 GiB of records (~390 million headers); a bound against reading an
/// unrelated huge file into memory.
pub const MAX_FILE: u64 = 32 << 30;

/// A header with its height.
pub type Stored = (u32, [u8; 80]);

/// An open header file.
#[derive(Debug)]
pub struct HeaderStore {
    file: File,
    path: PathBuf,
    records: u64,
}

/// What [`HeaderStore::open`] found.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Every valid record, in file order.
    pub records: Vec<Stored>,
    /// Bytes of a torn write cut off the end (0 if the file was clean).
    pub truncated: u64,
}

fn check(body: &[u8]) -> [u8; 4] {
    let digest = Sha256::digest(body);
    [digest[0], digest[1], digest[2], digest[3]]
}

fn encode(height: u32, header: &[u8; 80]) -> [u8; RECORD] {
    let mut r = [0u8; RECORD];
    r[..80].copy_from_slice(header);
    r[80..84].copy_from_slice(&height.to_le_bytes());
    let c = check(&r[..84]);
    r[84..].copy_from_slice(&c);
    r
}

fn decode(r: &[u8]) -> Option<Stored> {
    let body = r.get(..84)?;
    if r.get(84..88)? != check(body) {
        return None;
    }
    let header: [u8; 80] = body.get(..80)?.try_into().ok()?;
    let height = u32::from_le_bytes(body.get(80..84)?.try_into().ok()?);
    Some((height, header))
}

impl HeaderStore {
    /// Opens (or creates) the file, cutting off a torn write at its end.
    ///
    /// # Errors
    /// [`Error::Io`]; [`Error::Store`] for corruption before the end of the file or a file
    /// larger than [`MAX_FILE`].
    pub fn open(path: &Path) -> Result<(HeaderStore, Loaded), Error> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        let len = file.metadata()?.len();
        if len > MAX_FILE {
            return Err(Error::Store(format!(
                "{}: {len} bytes is more than a header file may hold",
                path.display()
            )));
        }
        let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
        file.read_to_end(&mut bytes)?;
        let mut records = Vec::with_capacity(bytes.len() / RECORD);
        let mut bad_at = None;
        for (i, chunk) in bytes.chunks(RECORD).enumerate() {
            match (chunk.len() == RECORD).then(|| decode(chunk)).flatten() {
                Some(r) if bad_at.is_none() => records.push(r),
                Some(_) => {
                    let at = bad_at.unwrap_or(0) * RECORD;
                    return Err(Error::Store(format!(
                        "{}: record at byte {at} is corrupt and valid records follow it",
                        path.display()
                    )));
                }
                None => bad_at = bad_at.or(Some(i)),
            }
        }
        let keep = (records.len() * RECORD) as u64;
        let truncated = len - keep;
        if truncated > 0 {
            file.set_len(keep)?;
            file.sync_all()?;
        }
        file.seek(SeekFrom::End(0))?;
        Ok((
            HeaderStore {
                file,
                path: path.to_owned(),
                records: records.len() as u64,
            },
            Loaded { records, truncated },
        ))
    }

    /// Records held.
    pub fn len(&self) -> u64 {
        self.records
    }

    /// No record held.
    pub fn is_empty(&self) -> bool {
        self.records == 0
    }

    /// Appends records and makes them durable.
    ///
    /// # Errors
    /// [`Error::Io`].
    pub fn append(&mut self, records: &[Stored]) -> Result<(), Error> {
        if records.is_empty() {
            return Ok(());
        }
        let mut buf = Vec::with_capacity(records.len() * RECORD);
        for (height, header) in records {
            buf.extend_from_slice(&encode(*height, header));
        }
        self.file.write_all(&buf)?;
        self.file.sync_data()?;
        self.records += records.len() as u64;
        Ok(())
    }

    /// Replaces the whole file by `records` atomically (temporary file, `fsync`, rename).
    ///
    /// # Errors
    /// [`Error::Io`].
    pub fn rewrite(&mut self, records: &[Stored]) -> Result<(), Error> {
        let tmp = self.path.with_extension("tmp");
        {
            let mut f = File::create(&tmp)?;
            let mut buf = Vec::with_capacity(records.len() * RECORD);
            for (height, header) in records {
                buf.extend_from_slice(&encode(*height, header));
            }
            f.write_all(&buf)?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, &self.path)?;
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            File::open(dir)?.sync_all()?;
        }
        self.file = OpenOptions::new().read(true).write(true).open(&self.path)?;
        self.file.seek(SeekFrom::End(0))?;
        self.records = records.len() as u64;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(i: u8) -> [u8; 80] {
        [i; 80]
    }

    #[test]
    fn appends_reopens_and_cuts_a_torn_write() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("headers");
        let (mut s, loaded) = HeaderStore::open(&path).unwrap();
        assert!(loaded.records.is_empty());
        let recs: Vec<Stored> = (0..10).map(|i| (u32::from(i), header(i))).collect();
        s.append(&recs[..6]).unwrap();
        s.append(&recs[6..]).unwrap();
        drop(s);
        let (_, loaded) = HeaderStore::open(&path).unwrap();
        assert_eq!(
            (loaded.records.clone(), loaded.truncated),
            (recs.clone(), 0)
        );

        // A torn write: half a record, then a whole record whose bytes never all landed.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        let mut torn = encode(10, &header(10)).to_vec();
        torn[3] ^= 0xff;
        f.write_all(&torn).unwrap();
        f.write_all(&encode(11, &header(11))[..40]).unwrap();
        drop(f);
        let (mut s, loaded) = HeaderStore::open(&path).unwrap();
        assert_eq!(loaded.records, recs);
        assert_eq!(loaded.truncated, (RECORD + 40) as u64);
        assert_eq!(
            std::fs::metadata(&path).unwrap().len(),
            (10 * RECORD) as u64
        );
        // And the store goes on from there.
        s.append(&[(10, header(10))]).unwrap();
        drop(s);
        assert_eq!(HeaderStore::open(&path).unwrap().1.records.len(), 11);
    }

    #[test]
    fn corruption_before_valid_records_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("headers");
        let (mut s, _) = HeaderStore::open(&path).unwrap();
        s.append(&[(0, header(0)), (1, header(1)), (2, header(2))])
            .unwrap();
        drop(s);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[RECORD + 5] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        match HeaderStore::open(&path) {
            Err(Error::Store(why)) => assert!(why.contains("byte 88"), "{why}"),
            other => panic!("corruption accepted: {other:?}"),
        }
    }

    #[test]
    fn rewrite_replaces_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("headers");
        let (mut s, _) = HeaderStore::open(&path).unwrap();
        s.append(&[(0, header(0)), (1, header(1)), (1, header(9))])
            .unwrap();
        s.rewrite(&[(0, header(0)), (1, header(9))]).unwrap();
        s.append(&[(2, header(2))]).unwrap();
        drop(s);
        let (_, loaded) = HeaderStore::open(&path).unwrap();
        assert_eq!(
            loaded.records,
            [(0, header(0)), (1, header(9)), (2, header(2))]
        );
        assert!(!path.with_extension("tmp").exists());
    }
}
