//! The single-node store: one redb file under `data_dir`.
