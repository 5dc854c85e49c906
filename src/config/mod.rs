//! hastmon.conf (and TOML) into resolved per-node, per-resource settings.
