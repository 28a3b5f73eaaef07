//! After the switch: the validator signs again. The bundled `signing` health check against the
//! simulator's commits: a validator that signs again, one that never does (a warning by default,
//! a rollback when configured), a chain that stalls after the upgrade, a node outside the
//! active set.

mod notify;
mod signing;
mod timeline;
