//! The Maglev new-flow table, bit-exact with VPP.
