//! The reconcile plan: operations that bring VPP from what it holds to what it should hold.
