//! What a plugin's binding code says when it is given an answer of the wrong shape is the
//! language runtime's words — `invalid variant tag value "refused"`, `expected a string,
//! received [undefined]`, a Python `KeyError` — and names neither the world nor the shape. A
//! trap whose output reads like one is told the shape its world expects, in its language.

use super::World;

/// The shape `world` answers in, in the language the output looks like, when it looks like a
/// binding's complaint.
pub fn for_trap(world: World, output: &str) -> Option<String> {
    let js = [
        "invalid variant tag",
        "expected a string",
        "expected a number",
        "received [",
        "is not a valid",
        "TypeError",
    ]
    .iter()
    .any(|p| output.contains(p))
        && !output.contains("Traceback");
    let py = output.contains("Traceback")
        && ["KeyError", "TypeError", "AttributeError", "ValueError"]
            .iter()
            .any(|p| output.contains(p));
    let shape = match (world, js, py) {
        (_, false, false) => return None,
        (World::Resolver, true, _) => {
            "a decision object: { tag: 'use-staged' }, { tag: 'fetch', val: [{ url, checksum: { algorithm: 'sha256', hex } or undefined, format: 'auto' }] }, { tag: 'unresolved', val: 'why' }, { tag: 'refuse', val: 'why' } or { tag: 'not-before', val: { at: 1767225600n, reason } } (tags are kebab-case; `at` is a BigInt)"
        }
        (World::Resolver, _, true) => {
            "a decision: Decision_UseStaged(), Decision_Fetch([Artifact(url, checksum_or_None, ArchiveFormat.AUTO)]), Decision_Unresolved(\"why\"), Decision_Refuse(\"why\") or Decision_NotBefore(Deferral(at=seconds, reason=\"…\")), from wit_world.imports.types"
        }
        (World::Health, true, _) => "{ tag: 'healthy' | 'unhealthy' | 'pending', val: 'a text' }",
        (World::Health, _, true) => {
            "Health_Healthy(\"…\"), Health_Unhealthy(\"…\") or Health_Pending(\"…\"), from wit_world.imports.types"
        }
        (World::Source, true, _) => {
            "nothing once the bytes are written, or a thrown { tag: 'unsupported' } / { tag: 'retryable', val: 'why' } / { tag: 'failed', val: 'why' }"
        }
        (World::Source, _, true) => {
            "None once the bytes are written, or raise Err(FetchError_Retryable(\"why\")) (FetchError_Unsupported(), FetchError_Failed(\"why\"))"
        }
        (World::Notifier, true, _) => "nothing once delivered, or a thrown string saying why not",
        (World::Notifier, _, true) => {
            "None once delivered, or raise Err(\"why not\") (componentize_py_types.Err)"
        }
    };
    Some(format!("the {world} world expects {shape}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_binding_s_complaint_gets_the_world_s_shape_in_the_plugin_s_language() {
        let js = for_trap(
            World::Resolver,
            "Error: invalid variant tag value \"refused\" (received refused)",
        )
        .unwrap();
        assert!(js.contains("{ tag: 'refuse', val: 'why' }"), "{js}");
        let js = for_trap(
            World::Health,
            "TypeError: expected a string, received [undefined]",
        )
        .unwrap();
        assert!(js.contains("tag: 'healthy'"), "{js}");
        let py = for_trap(
            World::Health,
            "Traceback (most recent call last):\n  ...\nKeyError: <class 'str'>",
        )
        .unwrap();
        assert!(py.contains("Health_Healthy"), "{py}");
        let py = for_trap(
            World::Notifier,
            "Traceback (most recent call last):\nTypeError: x",
        )
        .unwrap();
        assert!(py.contains("raise Err"), "{py}");
        assert_eq!(
            for_trap(
                World::Resolver,
                "thread 'main' panicked at src/lib.rs:3:5:\noops"
            ),
            None
        );
    }
}
