//! PostgreSQL stores for Nexus.
