"""Everything that touches storage: tables, guarded writes, history, the run ledger."""
