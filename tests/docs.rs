//! The documentation checked against the tree: ARCHITECTURE.md names every file and folder under
//! `src/` and nothing that is not there, its dependency table is what the code's `crate::` paths
//! say, and every relative link of the README and `docs/` leads to a file (and a heading) that
//! exists. A file moved or a module made to use another fails here until the text says so. The
//! alerting rules and the dashboard under `deploy/` name only series wasmvisor exports, and every
//! alert has its promtool test.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("cannot read {rel}: {e}"))
}

/// Every `.rs` file and every folder under `src/`, as `src/…` paths (folders end with `/`).
fn tree() -> (BTreeSet<String>, BTreeSet<String>) {
    fn walk(dir: &Path, rel: &str, files: &mut BTreeSet<String>, dirs: &mut BTreeSet<String>) {
        let mut entries: Vec<_> = fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("cannot list {rel}: {e}"))
            .map(|e| e.expect("a directory entry"))
            .collect();
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = format!("{rel}{name}");
            if entry.file_type().expect("a file type").is_dir() {
                dirs.insert(format!("{path}/"));
                walk(&entry.path(), &format!("{path}/"), files, dirs);
            } else if name.ends_with(".rs") {
                files.insert(path);
            }
        }
    }
    let (mut files, mut dirs) = (BTreeSet::new(), BTreeSet::new());
    walk(&root().join("src"), "src/", &mut files, &mut dirs);
    (files, dirs)
}

/// The `src/…` paths a text names, without the punctuation that follows them in prose.
fn src_paths(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("src/") {
        let before = rest[..at].chars().next_back();
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || "_-./".contains(c)))
            .unwrap_or(tail.len());
        // `tests/sim/src/…` and the like are other crates' folders.
        if !before.is_some_and(|c| c.is_ascii_alphanumeric() || "_-/".contains(c)) {
            found.push(tail[..end].trim_end_matches('.').to_string());
        }
        rest = &tail[end..];
    }
    found
}

/// The lines of ARCHITECTURE.md's folder map: the first fenced block after `## Folder map`.
fn folder_map(text: &str) -> Vec<&str> {
    let after = &text[text
        .find("## Folder map")
        .expect("ARCHITECTURE.md has a folder map")..];
    let mut lines = after.lines().skip_while(|l| !l.starts_with("```")).skip(1);
    let map: Vec<&str> = lines
        .by_ref()
        .take_while(|l| !l.starts_with("```"))
        .collect();
    assert!(!map.is_empty(), "the folder map is empty");
    map
}

/// The files and folders the folder map names: full `src/…` paths, and bare `name.rs` words on
/// the lines of the folder (or file) the group starts with.
fn named_in_map(map: &[&str]) -> (BTreeSet<String>, Vec<String>) {
    let mut named = BTreeSet::new();
    let mut unknown_bare = Vec::new();
    let mut folder = String::new();
    for line in map {
        if line.starts_with("src/") {
            let first = line.split_whitespace().next().expect("a path");
            let first = first.trim_end_matches(',');
            // `src/cli/` is its own folder; `src/fs.rs` is in `src/`.
            folder = first[..=first.rfind('/').expect("a src/ path")].to_string();
        }
        for path in src_paths(line) {
            named.insert(path);
        }
        for word in line.split(|c: char| !(c.is_ascii_alphanumeric() || "_-.".contains(c))) {
            let word = word.trim_end_matches('.');
            if word.ends_with(".rs") && !word.contains('/') {
                let path = format!("{folder}{word}");
                if !root().join(&path).is_file() {
                    unknown_bare.push(format!("{word} (on the lines of {folder})"));
                }
                named.insert(path);
            }
        }
    }
    (named, unknown_bare)
}

#[test]
fn every_src_path_architecture_names_exists() {
    let text = read("ARCHITECTURE.md");
    let missing: Vec<String> = src_paths(&text)
        .into_iter()
        .filter(|p| !root().join(p).exists())
        .collect();
    assert!(
        missing.is_empty(),
        "ARCHITECTURE.md names paths that do not exist: {missing:?}"
    );
    let (_, unknown) = named_in_map(&folder_map(&text));
    assert!(
        unknown.is_empty(),
        "ARCHITECTURE.md's folder map names files its folders do not hold: {unknown:?}"
    );
}

#[test]
fn the_folder_map_names_every_file_and_folder_under_src() {
    let text = read("ARCHITECTURE.md");
    let (named, _) = named_in_map(&folder_map(&text));
    let (files, dirs) = tree();
    let unnamed: Vec<&String> = files
        .iter()
        .chain(dirs.iter())
        .filter(|p| !named.contains(*p))
        .collect();
    assert!(
        unnamed.is_empty(),
        "ARCHITECTURE.md's folder map does not name: {unnamed:?}"
    );
}

/// The top-level modules: `src/<name>/` folders and `src/<name>.rs` files beside lib.rs.
fn modules() -> BTreeSet<String> {
    let (files, dirs) = tree();
    let top = |p: &str| !p["src/".len()..].trim_end_matches('/').contains('/');
    dirs.iter()
        .filter(|d| top(d))
        .map(|d| d["src/".len()..d.len() - 1].to_string())
        .chain(
            files
                .iter()
                .filter(|f| top(f))
                .map(|f| f["src/".len()..f.len() - ".rs".len()].to_string()),
        )
        .filter(|m| m != "lib" && m != "main")
        .collect()
}

/// Which top-level modules each module's code names as `crate::<module>` (comments left out).
fn dependencies() -> BTreeMap<String, BTreeSet<String>> {
    let modules = modules();
    let (files, _) = tree();
    let mut deps: BTreeMap<String, BTreeSet<String>> = modules
        .iter()
        .map(|m| (m.clone(), BTreeSet::new()))
        .collect();
    for file in &files {
        let rel = &file["src/".len()..];
        let owner = rel.split(['/', '.']).next().expect("a name").to_string();
        let Some(uses) = deps.get_mut(&owner) else {
            continue; // lib.rs and main.rs: the root
        };
        for line in read(file).lines() {
            if line.trim_start().starts_with("//") {
                continue;
            }
            let mut rest = line;
            while let Some(at) = rest.find("crate::") {
                let tail = &rest[at + "crate::".len()..];
                let end = tail
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(tail.len());
                let name = &tail[..end];
                if name != owner && modules.contains(name) {
                    uses.insert(name.to_string());
                }
                rest = &tail[end..];
            }
        }
    }
    deps
}

/// The `## Dependencies` table of ARCHITECTURE.md, in its order: module, the modules it uses.
fn dependency_table(text: &str) -> Vec<(String, BTreeSet<String>)> {
    let after = &text[text.find("## Dependencies").expect("a dependency section")..];
    let names = |cell: &str| -> BTreeSet<String> {
        cell.split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_string)
            .collect()
    };
    after
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2) // the header and its rule
        .map(|row| {
            let cells: Vec<&str> = row.split('|').collect();
            let module = names(cells[1]).into_iter().next().expect("a module name");
            (module, names(cells[2]))
        })
        .collect()
}

#[test]
fn the_dependency_table_is_what_the_code_uses_and_points_one_way() {
    let text = read("ARCHITECTURE.md");
    let table = dependency_table(&text);
    let documented: BTreeMap<String, BTreeSet<String>> = table.iter().cloned().collect();
    let actual = dependencies();
    for (module, uses) in &actual {
        assert_eq!(
            documented.get(module),
            Some(uses),
            "ARCHITECTURE.md's dependency table for `{module}`: the code uses {uses:?}"
        );
    }
    let extra: Vec<&String> = documented
        .keys()
        .filter(|m| !actual.contains_key(*m))
        .collect();
    assert!(
        extra.is_empty(),
        "the dependency table lists modules that do not exist: {extra:?}"
    );
    // Each row uses only the rows below it: the order is a layering, so there is no cycle.
    for (i, (module, uses)) in table.iter().enumerate() {
        let below: BTreeSet<&String> = table[i + 1..].iter().map(|(m, _)| m).collect();
        let upward: Vec<&String> = uses.iter().filter(|u| !below.contains(u)).collect();
        assert!(
            upward.is_empty(),
            "`{module}` uses {upward:?}, which the dependency table lists above it"
        );
    }
}

/// GitHub's anchor of a heading: lower case, punctuation dropped, spaces as hyphens.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

fn anchors(text: &str) -> BTreeSet<String> {
    let mut fenced = false;
    let mut found = BTreeSet::new();
    for line in text.lines() {
        if line.starts_with("```") {
            fenced = !fenced;
        } else if !fenced && line.starts_with('#') {
            found.insert(anchor(line.trim_start_matches('#')));
        }
    }
    found
}

/// The targets of a text's `](target)` links outside code.
fn links(text: &str) -> Vec<String> {
    let mut fenced = false;
    let mut found = Vec::new();
    for line in text.lines() {
        if line.starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        let mut rest = line;
        while let Some(at) = rest.find("](") {
            let tail = &rest[at + 2..];
            let end = tail.find(')').unwrap_or(tail.len());
            found.push(tail[..end].to_string());
            rest = &tail[end..];
        }
    }
    found
}

#[test]
fn every_relative_link_of_the_documentation_leads_somewhere() {
    let mut docs: Vec<PathBuf> = vec![PathBuf::from("README.md"), PathBuf::from("ARCHITECTURE.md")];
    let mut in_docs: Vec<PathBuf> = fs::read_dir(root().join("docs"))
        .expect("a docs/ folder")
        .map(|e| e.expect("an entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .map(|p| {
            p.strip_prefix(root())
                .expect("under the root")
                .to_path_buf()
        })
        .collect();
    in_docs.sort();
    assert!(!in_docs.is_empty(), "docs/ holds no documents");
    docs.extend(in_docs);
    let mut broken = Vec::new();
    for doc in &docs {
        let text = read(&doc.to_string_lossy());
        let dir = doc.parent().unwrap_or(Path::new(""));
        for target in links(&text) {
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let (file, fragment) = match target.split_once('#') {
                Some((f, a)) => (f, Some(a)),
                None => (target.as_str(), None),
            };
            let path = if file.is_empty() {
                doc.clone()
            } else {
                dir.join(file)
            };
            let full = root().join(&path);
            if !full.exists() {
                broken.push(format!(
                    "{}: {target} (no {})",
                    doc.display(),
                    path.display()
                ));
                continue;
            }
            if let Some(fragment) = fragment
                && full.extension().is_some_and(|e| e == "md")
                && !anchors(&fs::read_to_string(&full).expect("readable")).contains(fragment)
            {
                broken.push(format!("{}: {target} (no such heading)", doc.display()));
            }
        }
    }
    assert!(broken.is_empty(), "broken links: {broken:#?}");
}

#[test]
fn anchors_are_github_s() {
    assert_eq!(
        anchor(" Backups, rollback and crash restarts"),
        "backups-rollback-and-crash-restarts"
    );
    assert_eq!(
        anchor(" When a manual upgrade's height is believed"),
        "when-a-manual-upgrades-height-is-believed"
    );
    assert_eq!(
        anchor(" How a restore replaces data/"),
        "how-a-restore-replaces-data"
    );
    assert_eq!(
        src_paths("see `src/tree/swap.rs`, and tests/sim/src/main.rs."),
        ["src/tree/swap.rs"]
    );
}

/// Every series name `src/observe/metrics.rs` registers, as the exposition spells it: the
/// `wasmvisor_` prefix, the name, its unit, and its type's suffix (`_total` for a counter,
/// `_bucket`, `_sum` and `_count` for a histogram, `_info` for an info).
fn exported_metrics() -> BTreeSet<String> {
    let text = read("src/observe/metrics.rs");
    let fields_at = text
        .find("pub struct Metrics {")
        .expect("the Metrics struct");
    let fields = &text[fields_at..];
    let fields = &fields[..fields.find("\n}").expect("its end")];
    let type_of = |field: &str| -> &str {
        let line = fields
            .lines()
            .find(|l| l.trim().starts_with(&format!("pub {field}: ")))
            .unwrap_or_else(|| panic!("the metrics register `{field}`, which Metrics lacks"));
        if line.contains("Histogram") {
            "histogram"
        } else if line.contains("Counter") {
            "counter"
        } else {
            "gauge"
        }
    };
    let mut names = BTreeSet::new();
    for call in text.split(".register").skip(1) {
        if !(call.starts_with('(') || call.starts_with("_with_unit(")) {
            continue;
        }
        let name = call.split('"').nth(1).expect("a registered name");
        let unit = if call.contains("Unit::Seconds") {
            "_seconds"
        } else if call.contains("Unit::Bytes") {
            "_bytes"
        } else {
            ""
        };
        assert!(
            !call.contains("Unit::") || !unit.is_empty(),
            "a unit this test does not know: {call}"
        );
        let base = format!("wasmvisor_{name}{unit}");
        let kind = if call.contains("Info::new") {
            "info"
        } else {
            let field = call
                .split("m.")
                .nth(1)
                .and_then(|f| f.split('.').next())
                .expect("a registered field");
            type_of(field)
        };
        match kind {
            "counter" => {
                names.insert(format!("{base}_total"));
            }
            "histogram" => {
                names.extend(["_bucket", "_sum", "_count"].map(|s| format!("{base}{s}")))
            }
            "info" => {
                names.insert(format!("{base}_info"));
            }
            _ => {
                names.insert(base);
            }
        }
    }
    names
}

/// The `wasmvisor_…` names a text uses.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("wasmvisor_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        found.insert(tail[..end].to_string());
        rest = &tail[end..];
    }
    found
}

#[test]
fn the_exported_metrics_are_read_from_their_registrations() {
    let names = exported_metrics();
    for name in [
        "wasmvisor_build_info",
        "wasmvisor_node_up",
        "wasmvisor_node_start_time_seconds",
        "wasmvisor_node_restarts_total",
        "wasmvisor_upgrade_phase_duration_seconds_bucket",
        "wasmvisor_backup_last_bytes",
        "wasmvisor_upgrade_ready",
        "wasmvisor_upgrade_eta_seconds",
        "wasmvisor_plan_polls_total",
        "wasmvisor_plan_last_poll_timestamp_seconds",
    ] {
        assert!(names.contains(name), "{name} not in {names:?}");
    }
    for name in [
        "wasmvisor_node_restarts",
        "wasmvisor_upgrade_phase_duration_seconds",
    ] {
        assert!(!names.contains(name), "{name} is not a series");
    }
    assert_eq!(
        metric_names("rate(wasmvisor_a_total[5m]) / wasmvisor_b{x=\"wasmvisor\"}"),
        BTreeSet::from(["wasmvisor_a_total".to_string(), "wasmvisor_b".to_string()])
    );
}

#[test]
fn the_alerting_rules_name_only_exported_metrics_and_each_alert_is_tested() {
    let exported = exported_metrics();
    let rules = read("deploy/prometheus/alerts.yml");
    let tests = read("deploy/prometheus/alerts.test.yml");
    for (file, text) in [("alerts.yml", &rules), ("alerts.test.yml", &tests)] {
        let unknown: Vec<_> = metric_names(text).difference(&exported).cloned().collect();
        assert!(
            unknown.is_empty(),
            "deploy/prometheus/{file} names series wasmvisor does not export: {unknown:?}"
        );
    }
    let alerts: Vec<&str> = rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert: "))
        .collect();
    assert!(alerts.len() >= 10, "{alerts:?}");
    for alert in alerts {
        assert!(
            tests.contains(&format!("alertname: {alert}\n")),
            "alerts.test.yml does not test {alert}"
        );
    }
}

#[test]
fn the_dashboard_is_a_grafana_model_of_exported_metrics() {
    let text = read("deploy/grafana/wasmvisor.json");
    let model: serde_json::Value =
        serde_json::from_str(&text).expect("deploy/grafana/wasmvisor.json is JSON");
    let input = &model["__inputs"][0];
    assert_eq!(
        (input["name"].as_str(), input["pluginId"].as_str()),
        (Some("DS_PROMETHEUS"), Some("prometheus"))
    );
    assert!(model["title"].is_string() && model["uid"].is_string());
    let exported = exported_metrics();
    let (mut ids, mut used) = (BTreeSet::new(), BTreeSet::new());
    let panels = model["panels"].as_array().expect("panels");
    for panel in panels {
        let title = panel["title"].as_str().unwrap_or_default();
        assert!(!title.is_empty(), "a panel without a title: {panel}");
        assert!(
            ids.insert(panel["id"].as_u64().expect("a panel id")),
            "two panels have the id of {title}"
        );
        let grid = &panel["gridPos"];
        let (x, w) = (grid["x"].as_u64().unwrap(), grid["w"].as_u64().unwrap());
        assert!(
            x + w <= 24 && grid["h"].as_u64().unwrap() > 0,
            "{title}: {grid}"
        );
        if panel["type"] == "row" {
            continue;
        }
        assert_eq!(
            panel["datasource"]["uid"], "${DS_PROMETHEUS}",
            "{title}: its datasource"
        );
        let targets = panel["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{title} has no query");
        for target in targets {
            let expr = target["expr"].as_str().expect("an expr");
            let names = metric_names(expr);
            assert!(
                !names.is_empty(),
                "{title}: {expr} names no wasmvisor series"
            );
            let unknown: Vec<_> = names.difference(&exported).cloned().collect();
            assert!(
                unknown.is_empty(),
                "{title}: {expr} names series wasmvisor does not export: {unknown:?}"
            );
            used.extend(names);
        }
    }
    // What an operator looks for first.
    for name in [
        "wasmvisor_node_up",
        "wasmvisor_current_binary",
        "wasmvisor_upgrade_ready",
        "wasmvisor_upgrade_eta_seconds",
        "wasmvisor_upcoming_upgrade_height",
        "wasmvisor_last_upgrade_downtime_seconds",
        "wasmvisor_upgrade_phase_duration_seconds_sum",
        "wasmvisor_plugin_calls_total",
        "wasmvisor_backups_total",
        "wasmvisor_node_restarts_total",
    ] {
        assert!(used.contains(name), "the dashboard has no panel of {name}");
    }
}
