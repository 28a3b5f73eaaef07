//! What a component imports and exports, read from its sections without compiling it: a
//! component built for the wrong world, against a contract version this host lacks, or needing
//! an interface it does not provide is refused in milliseconds, not after the seconds a large
//! (JavaScript, Python) component takes to compile — and nothing is cached for it.

use wasmtime::wasmparser::{Encoding, Parser, Payload};

use super::{INTERFACE_VERSIONS, World};

/// Why a component is refused before it is compiled.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InspectError {
    /// wasmparser's reason (its error is neither `Clone` nor comparable).
    #[error("not a valid component: {0}")]
    Invalid(String),
    #[error(
        "it is a core WebAssembly module, not a component: build it for wasm32-wasip2 (or wrap it with `wasm-tools component new`)"
    )]
    CoreModule,
    #[error(
        "it imports {}, which wasmvisor does not provide (it provides wasi:cli, clocks, filesystem, io, random and sockets 0.2, wasi:http 0.2's types and outgoing-handler, and wasmvisor:plugin {}): rebuild it without them (for componentize-js: `-d fetch-event`)",
        .0.join(", "),
        INTERFACE_VERSIONS.join(", ")
    )]
    Unprovided(Vec<String>),
    #[error(
        "it implements {interface} version {version}; this wasmvisor implements versions {}: rebuild it against wit/plugin-{}",
        INTERFACE_VERSIONS.join(", "),
        INTERFACE_VERSIONS[0]
    )]
    Version { interface: String, version: String },
    #[error("it is a {is} plugin (exports {export}), configured as a {configured}")]
    OtherWorld {
        is: World,
        export: String,
        configured: World,
    },
    #[error(
        "it exports no wasmvisor plugin interface (expected {}@{}; found {})",
        .expected.export(),
        INTERFACE_VERSIONS[0],
        found(.exports)
    )]
    NoInterface {
        expected: World,
        exports: Vec<String>,
    },
}

fn found(exports: &[String]) -> String {
    if exports.is_empty() {
        "nothing".into()
    } else {
        exports.join(", ")
    }
}

/// A component's top-level imports and exports, by name (`ns:pkg/iface@version`).
#[derive(Debug, Default)]
pub struct Interfaces {
    pub imports: Vec<String>,
    pub exports: Vec<String>,
}

/// Reads the top-level imports and exports of a component.
pub fn read(bytes: &[u8]) -> Result<Interfaces, InspectError> {
    let mut found = Interfaces::default();
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(|e| InspectError::Invalid(e.to_string()))?;
        match payload {
            Payload::Version {
                encoding: Encoding::Module,
                ..
            } if depth == 0 => {
                return Err(InspectError::CoreModule);
            }
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentImportSection(reader) if depth == 0 => {
                for import in reader {
                    let import = import.map_err(|e| InspectError::Invalid(e.to_string()))?;
                    found.imports.push(import.name.name.to_string());
                }
            }
            Payload::ComponentExportSection(reader) if depth == 0 => {
                for export in reader {
                    let export = export.map_err(|e| InspectError::Invalid(e.to_string()))?;
                    found.exports.push(export.name.name.to_string());
                }
            }
            _ => {}
        }
    }
    Ok(found)
}

/// The WASI packages whose 0.2 interfaces the host links (wasmtime-wasi's p2 set), and
/// wasi:http's outgoing side.
const WASI_PACKAGES: [&str; 6] = [
    "wasi:cli",
    "wasi:clocks",
    "wasi:filesystem",
    "wasi:io",
    "wasi:random",
    "wasi:sockets",
];
const PLUGIN_INTERFACES: [&str; 4] = ["types", "host", "http", "sink"];

/// Whether the host links an import of this name. WASI matches as wasmtime does: any 0.2.x.
pub fn provided(import: &str) -> bool {
    let (path, version) = import.split_once('@').unwrap_or((import, ""));
    let Some((package, iface)) = path.split_once('/') else {
        return false;
    };
    let wasi_0_2 = version == "0.2" || version.starts_with("0.2.");
    if WASI_PACKAGES.contains(&package) {
        return wasi_0_2;
    }
    if package == "wasi:http" {
        // Outgoing requests (`wasi_http.rs`); a plugin serves none.
        return wasi_0_2 && ["types", "outgoing-handler"].contains(&iface);
    }
    package == "wasmvisor:plugin"
        && PLUGIN_INTERFACES.contains(&iface)
        && INTERFACE_VERSIONS.contains(&version)
}

/// The world and contract version a component implements, checked against the world it is
/// configured as, and its imports against what the host links.
pub fn check(found: &Interfaces, world: World) -> Result<&'static str, InspectError> {
    let missing: Vec<&str> = found
        .imports
        .iter()
        .map(String::as_str)
        .filter(|i| !provided(i))
        .collect();
    let version = INTERFACE_VERSIONS
        .into_iter()
        .find(|v| found.exports.contains(&format!("{}@{v}", world.export())));
    if let Some(version) = version {
        if !missing.is_empty() {
            return Err(InspectError::Unprovided(
                missing.into_iter().map(str::to_string).collect(),
            ));
        }
        return Ok(version);
    }
    for e in &found.exports {
        let (iface, version) = e.split_once('@').unwrap_or((e, "?"));
        if iface == world.export() {
            return Err(InspectError::Version {
                interface: iface.to_string(),
                version: version.to_string(),
            });
        }
        if let Some(other) = World::ALL.into_iter().find(|w| w.export() == iface) {
            return Err(InspectError::OtherWorld {
                is: other,
                export: e.clone(),
                configured: world,
            });
        }
    }
    Err(InspectError::NoInterface {
        expected: world,
        exports: found.exports.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wasi_matches_any_0_2_patch_and_plugin_interfaces_their_versions() {
        assert!(provided("wasi:io/streams@0.2.0"));
        assert!(provided("wasi:cli/environment@0.2.10"));
        assert!(!provided("wasi:io/streams@0.3.0-rc-2025-09-16"));
        assert!(provided("wasi:http/outgoing-handler@0.2.3"));
        assert!(provided("wasi:http/types@0.2.12"));
        assert!(!provided("wasi:http/incoming-handler@0.2.3"));
        assert!(!provided("wasi:http/handler@0.3.0-rc-2025-09-16"));
        assert!(provided("wasmvisor:plugin/host@0.1.0"));
        assert!(provided("wasmvisor:plugin/sink@0.2.0"));
        assert!(!provided("wasmvisor:plugin/host@0.3.0"));
        assert!(!provided("wasmvisor:plugin/secrets@0.2.0"));
        assert!(!provided("no-slash"));
    }

    #[test]
    fn a_missing_import_is_named_before_compiling() {
        let found = Interfaces {
            imports: vec![
                "wasi:io/streams@0.2.10".into(),
                "wasi:keyvalue/store@0.2.0-draft".into(),
            ],
            exports: vec!["wasmvisor:plugin/resolve@0.2.0".into()],
        };
        let e = check(&found, World::Resolver).unwrap_err();
        assert_eq!(
            e,
            InspectError::Unprovided(vec!["wasi:keyvalue/store@0.2.0-draft".into()])
        );
        assert_eq!(
            e.to_string(),
            "it imports wasi:keyvalue/store@0.2.0-draft, which wasmvisor does not provide (it provides wasi:cli, clocks, filesystem, io, random and sockets 0.2, wasi:http 0.2's types and outgoing-handler, and wasmvisor:plugin 0.2.1, 0.2.0, 0.1.0): rebuild it without them (for componentize-js: `-d fetch-event`)"
        );
    }

    #[test]
    fn the_version_and_world_are_read_from_the_exports() {
        let of = |e: &str| Interfaces {
            imports: Vec::new(),
            exports: vec![e.into()],
        };
        assert_eq!(
            check(&of("wasmvisor:plugin/fetch@0.1.0"), World::Source),
            Ok("0.1.0")
        );
        assert_eq!(
            check(&of("wasmvisor:plugin/check@0.2.0"), World::Health),
            Ok("0.2.0")
        );
        assert_eq!(
            check(&of("wasmvisor:plugin/notify@0.2.1"), World::Notifier),
            Ok("0.2.1")
        );
        let e = check(&of("wasmvisor:plugin/check@0.2.0"), World::Resolver).unwrap_err();
        assert_eq!(
            e.to_string(),
            "it is a health plugin (exports wasmvisor:plugin/check@0.2.0), configured as a resolver"
        );
        let e = check(&of("wasmvisor:plugin/resolve@0.9.0"), World::Resolver).unwrap_err();
        assert_eq!(
            e.to_string(),
            "it implements wasmvisor:plugin/resolve version 0.9.0; this wasmvisor implements versions 0.2.1, 0.2.0, 0.1.0: rebuild it against wit/plugin-0.2.1"
        );
        let e = check(&of("wasi:cli/run@0.2.0"), World::Resolver).unwrap_err();
        assert_eq!(
            e.to_string(),
            "it exports no wasmvisor plugin interface (expected wasmvisor:plugin/resolve@0.2.1; found wasi:cli/run@0.2.0)"
        );
        assert_eq!(
            read(b"\0asm\x01\0\0\0").unwrap_err(),
            InspectError::CoreModule
        );
        assert!(matches!(read(b"not wasm"), Err(InspectError::Invalid(_))));
    }
}
