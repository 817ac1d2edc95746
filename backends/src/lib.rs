//! weir-backends
