//! Replay every revision's upgrade() in graph order into the set of foreign keys at head.
