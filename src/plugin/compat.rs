//! A 0.1 plugin's arguments and answers in the host's (0.2) types. The two versions differ only
//! in the resolver's decision: 0.1 has no `unresolved` and no `not-before`. A 0.1 resolver is
//! shown an earlier `unresolved` as the `refuse` it would have seen from a 0.1 host, and its own
//! `refuse` stays a veto, as it was written to be.

use super::bindings::v0_1::types as old;
use super::bindings::{
    ArchiveFormat, Artifact, Checksum, Decision, FetchError, GuestPlan, HashAlgorithm, Health,
    HealthContext, Platform, Request, Staged,
};

fn plan(p: &GuestPlan) -> old::Plan {
    old::Plan {
        name: p.name.clone(),
        height: p.height,
        info: p.info.clone(),
    }
}

pub fn request(r: &Request) -> old::Request {
    let Platform { os, arch } = &r.platform;
    old::Request {
        plan: plan(&r.plan),
        platform: old::Platform {
            os: os.clone(),
            arch: arch.clone(),
        },
        daemon_name: r.daemon_name.clone(),
        staged: r.staged.as_ref().map(|s: &Staged| old::Staged {
            dir: s.dir.clone(),
            has_binary: s.has_binary,
            sha256: s.sha256.clone(),
        }),
        downloads_allowed: r.downloads_allowed,
        checksum_required: r.checksum_required,
    }
}

pub fn artifact(a: &Artifact) -> old::Artifact {
    old::Artifact {
        url: a.url.clone(),
        checksum: a.checksum.as_ref().map(|c| old::Checksum {
            algorithm: match c.algorithm {
                HashAlgorithm::Sha256 => old::HashAlgorithm::Sha256,
                HashAlgorithm::Sha512 => old::HashAlgorithm::Sha512,
            },
            hex: c.hex.clone(),
        }),
        format: match a.format {
            ArchiveFormat::Auto => old::ArchiveFormat::Auto,
            ArchiveFormat::Raw => old::ArchiveFormat::Raw,
            ArchiveFormat::TarGz => old::ArchiveFormat::TarGz,
            ArchiveFormat::Zip => old::ArchiveFormat::Zip,
        },
    }
}

fn artifact_back(a: old::Artifact) -> Artifact {
    Artifact {
        url: a.url,
        checksum: a.checksum.map(|c| Checksum {
            algorithm: match c.algorithm {
                old::HashAlgorithm::Sha256 => HashAlgorithm::Sha256,
                old::HashAlgorithm::Sha512 => HashAlgorithm::Sha512,
            },
            hex: c.hex,
        }),
        format: match a.format {
            old::ArchiveFormat::Auto => ArchiveFormat::Auto,
            old::ArchiveFormat::Raw => ArchiveFormat::Raw,
            old::ArchiveFormat::TarGz => ArchiveFormat::TarGz,
            old::ArchiveFormat::Zip => ArchiveFormat::Zip,
        },
    }
}

/// The decision in force, as a 0.1 resolver understands it.
pub fn previous(d: &Decision) -> old::Decision {
    match d {
        Decision::UseStaged => old::Decision::UseStaged,
        Decision::Fetch(list) => old::Decision::Fetch(list.iter().map(artifact).collect()),
        Decision::Unresolved(reason) | Decision::Refuse(reason) => {
            old::Decision::Refuse(reason.clone())
        }
        // The chain never passes a deferral on (later resolvers see the decision before it).
        Decision::NotBefore(d) => old::Decision::Refuse(d.reason.clone()),
    }
}

pub fn decision(d: old::Decision) -> Decision {
    match d {
        old::Decision::UseStaged => Decision::UseStaged,
        old::Decision::Fetch(list) => {
            Decision::Fetch(list.into_iter().map(artifact_back).collect())
        }
        old::Decision::Refuse(reason) => Decision::Refuse(reason),
    }
}

pub fn fetch_error(e: old::FetchError) -> FetchError {
    match e {
        old::FetchError::Unsupported => FetchError::Unsupported,
        old::FetchError::Retryable(m) => FetchError::Retryable(m),
        old::FetchError::Failed(m) => FetchError::Failed(m),
    }
}

pub fn health_context(c: &HealthContext) -> old::HealthContext {
    old::HealthContext {
        plan: plan(&c.plan),
        elapsed_ms: c.elapsed_ms,
        attempt: c.attempt,
    }
}

pub fn health(h: old::Health) -> Health {
    match h {
        old::Health::Healthy(t) => Health::Healthy(t),
        old::Health::Unhealthy(t) => Health::Unhealthy(t),
        old::Health::Pending(t) => Health::Pending(t),
    }
}
