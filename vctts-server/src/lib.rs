//! vctts-server: gateway, worker and standalone roles.
