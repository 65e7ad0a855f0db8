//! settle (in progress).
