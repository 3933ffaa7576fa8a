//! CPU references (helper in progress).
