//! The sans-IO probe state machine (states, rise/fall counter, intervals, history).
