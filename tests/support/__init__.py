"""What the tests run on: fakes, servers, clients and parsers (docs/testing.md, "Organisation")."""
