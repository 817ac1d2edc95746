//! weir-loom-tests
