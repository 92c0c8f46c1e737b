//! Normalization: NDC mapping, dictionary lookup, folding and flags.
