//! Unit tests of the generator on small hand-written `.api.json` fixtures.
