//! probe (in progress).
