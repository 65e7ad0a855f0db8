//! verdict (in progress).
