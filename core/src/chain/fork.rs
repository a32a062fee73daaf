//! Fork choice by cumulative work.

use core::fmt;

use crate::chain::verifier::HeaderVerifier;

/// Which of two branches has more work.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Branch {
    /// The current branch: more work, or equal work (the first seen is kept, as Bitcoin Core).
    Current,
    /// The candidate branch has strictly more work.
    Candidate,
}

/// Why two verifiers cannot be compared.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ForkChoiceError {
    /// They verify different networks.
    DifferentNetworks,
    /// They do not start from the same anchor, so their work is not comparable.
    DifferentAnchors,
    /// One of them has not accepted any header.
    Empty,
}

impl fmt::Display for ForkChoiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ForkChoiceError::DifferentNetworks => "branches are on different networks",
            ForkChoiceError::DifferentAnchors => "branches do not share an anchor",
            ForkChoiceError::Empty => "a branch has no verified header",
        })
    }
}

#[cfg(feature = "std")]
impl std::error::Error for ForkChoiceError {}

/// Compares two verified branches that grew from a common ancestor (a verifier cloned at the
/// fork point), by cumulative work.
pub fn choose_branch(
    current: &HeaderVerifier,
    candidate: &HeaderVerifier,
) -> Result<Branch, ForkChoiceError> {
    if current.params().network != candidate.params().network {
        return Err(ForkChoiceError::DifferentNetworks);
    }
    if current.anchor() != candidate.anchor() {
        return Err(ForkChoiceError::DifferentAnchors);
    }
    let (Some(a), Some(b)) = (current.tip(), candidate.tip()) else {
        return Err(ForkChoiceError::Empty);
    };
    Ok(if b.chainwork > a.chainwork {
        Branch::Candidate
    } else {
        Branch::Current
    })
}
