//! `wasmvisor plugin list|check|compile|call` and `wasmvisor prepare-upgrade`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::{Value, json};

use crate::config::Config;
use crate::layout::Layout;
use crate::plan::{self, Plan, Read};
use crate::plugin::{
    Artifact, Decision, Health, HealthContext, Host, Output, PluginSet, Plugins, World, artifact,
};

/// The plugin configuration in effect (`--plugins` overrides the configuration's).
pub fn plugins(cfg: &Config, over: Option<&Path>) -> Result<Plugins, String> {
    let path = over.map(Path::to_path_buf).or_else(|| cfg.plugins_path());
    Plugins::load(path.as_deref()).map_err(|e| e.to_string())
}

/// The compile cache folder: `WASMVISOR_PLUGIN_CACHE` where the operator put it, else
/// wasmvisor's own `cosmovisor/.wasmvisor-cache` (never through a symlink). A cache that cannot
/// be used costs only compile time: plugins are then compiled in memory.
pub fn cache_dir(cfg: &Config) -> Option<cap_std::fs::Dir> {
    use cap_std::{ambient_authority, fs::Dir};
    let opened = match &cfg.plugin_cache {
        Some(path) => std::fs::create_dir_all(path)
            .and_then(|()| Dir::open_ambient_dir(path, ambient_authority())),
        None => Dir::open_ambient_dir(cfg.root(), ambient_authority())
            .and_then(|root| crate::fsutil::own_dir(&root, crate::plugin::CACHE_DIR)),
    };
    match opened {
        Ok(dir) => Some(dir),
        Err(e) => {
            tracing::warn!(
                cache = %cfg.plugin_cache_dir().display(),
                "cannot use the plugin compile cache ({e}); compiling in memory"
            );
            None
        }
    }
}

/// Loads every plugin; all failures at once.
pub fn load(cfg: &Config, plugins: &Plugins) -> Result<PluginSet, String> {
    PluginSet::load(plugins, cache_dir(cfg)).map_err(|errors| {
        let lines: Vec<String> = errors.iter().map(|e| format!("  - {e}")).collect();
        format!(
            "{} plugin(s) cannot be used:\n{}",
            errors.len(),
            lines.join("\n")
        )
    })
}

pub fn list(cfg: &Config, over: Option<&Path>, json_out: bool) -> Result<(), String> {
    let plugins = plugins(cfg, over)?;
    let rows: Vec<Value> = plugins
        .all()
        .map(|p| {
            json!({
                "world": p.world,
                "name": p.name,
                "path": p.origin.to_string(),
                "sha256_pin": p.sha256,
                "allow_hosts": p.allow_hosts,
                "dirs": p.dirs.iter().map(|(h, g)| format!("{} -> {g}", h.display())).collect::<Vec<_>>(),
                "settings": p.settings.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>(),
                "memory": p.memory,
                "timeout_ms": p.timeout.as_millis() as u64,
            })
        })
        .collect();
    if json_out {
        return crate::output::line(json!({"file": plugins.file, "plugins": rows}));
    }
    match &plugins.file {
        Some(f) => crate::output::line(format!("plugin configuration: {}", f.display()))?,
        None => crate::output::line("plugin configuration: none (the bundled defaults)")?,
    }
    for p in plugins.all() {
        crate::output::line(format!(
            "{:<9} {:<16} {}  memory {} MiB, timeout {}, hosts [{}]{}",
            p.world.as_str(),
            p.name,
            p.origin,
            p.memory >> 20,
            crate::duration::format(p.timeout),
            p.allow_hosts.join(", "),
            if p.dirs.is_empty() {
                String::new()
            } else {
                format!(
                    ", dirs [{}]",
                    p.dirs
                        .iter()
                        .map(|(h, g)| format!("{} -> {g}", h.display()))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        ))?;
    }
    Ok(())
}

/// `check` and `compile`: load every plugin (compiling into the cache what is not there yet).
pub fn check(cfg: &Config, over: Option<&Path>) -> Result<(), String> {
    let plugins = plugins(cfg, over)?;
    let started = Instant::now();
    let set = load(cfg, &plugins)?;
    for p in set.resolvers.iter().chain(&set.sources).chain(&set.health) {
        crate::output::line(format!(
            "ok  {:<9} {:<16} sha256 {}  {}",
            p.spec.world.as_str(),
            p.spec.name,
            &p.digest[..16],
            if p.cached {
                "compiled code from the cache"
            } else {
                "compiled now, cached"
            }
        ))?;
    }
    crate::output::line(format!(
        "{} plugin(s) ready in {:.1} ms; cache {}",
        set.resolvers.len() + set.sources.len() + set.health.len(),
        started.elapsed().as_secs_f64() * 1e3,
        cfg.plugin_cache_dir().display()
    ))
}

/// What `plugin call` does.
pub struct CallArgs {
    pub world: String,
    pub name: String,
    pub plan: Option<PathBuf>,
    pub artifact: Option<String>,
    pub checksum: Option<String>,
    pub out: Option<PathBuf>,
}

/// Runs one plugin once, against a plan file (default: `data/upgrade-info.json`), and prints
/// its answer as JSON.
pub fn call(cfg: &Config, over: Option<&Path>, args: CallArgs) -> Result<(), String> {
    let world = World::parse(&args.world).ok_or_else(|| {
        format!(
            "unknown world {:?}: use resolver, source or health",
            args.world
        )
    })?;
    let plugins = plugins(cfg, over)?;
    let spec = plugins.find(world, &args.name).ok_or_else(|| {
        let names: Vec<&str> = plugins
            .all()
            .filter(|p| p.world == world)
            .map(|p| p.name.as_str())
            .collect();
        format!(
            "no {world} plugin named {:?} (configured: {})",
            args.name,
            if names.is_empty() {
                "none".into()
            } else {
                names.join(", ")
            }
        )
    })?;
    let host = Host::shared(cache_dir(cfg))?;
    let loaded = host.load(spec).map_err(|e| e.to_string())?;
    let plan = read_plan(cfg, args.plan.as_deref())?;
    let started = Instant::now();
    let answer = match world {
        World::Resolver => {
            // The resolvers before this one run first, as in an upgrade: a policy plugin sees
            // the decision it would see for real.
            let position = plugins
                .resolvers
                .iter()
                .position(|r| r.name == spec.name)
                .expect("found above");
            let mut set = PluginSet {
                host,
                resolvers: Vec::new(),
                sources: Vec::new(),
                health: Vec::new(),
                limits: artifact::Limits::default(),
                cancel: crate::cancel::Cancel::new(),
            };
            for earlier in &plugins.resolvers[..position] {
                set.resolvers
                    .push(host.load(earlier).map_err(|e| e.to_string())?);
            }
            set.resolvers.push(loaded);
            let request = match Layout::open(cfg) {
                Ok(layout) => set.request(cfg, &layout, &plan)?,
                Err(_) => bare_request(cfg, &plan),
            };
            let (decision, _) = set.resolve(&request).map_err(|e| e.to_string())?;
            decision_json(&decision)
        }
        World::Source => {
            let url = args
                .artifact
                .ok_or("a source needs --artifact <url> to fetch")?;
            let checksum = args.checksum.as_deref().map(parse_checksum).transpose()?;
            let out = args.out.unwrap_or_else(|| {
                PathBuf::from(
                    url.rsplit('/')
                        .next()
                        .filter(|s| !s.is_empty())
                        .unwrap_or("artifact"),
                )
            });
            let artifact = Artifact {
                url: url.clone(),
                checksum,
                format: crate::plugin::ArchiveFormat::Raw,
            };
            let sha512 = matches!(
                artifact.checksum.as_ref().map(|c| c.algorithm),
                Some(crate::plugin::HashAlgorithm::Sha512)
            );
            let _ = std::fs::remove_file(&out);
            let output =
                Output::open_path(&out, sha512, artifact::Limits::default().download, &url)
                    .map_err(|e| format!("cannot create {}: {e}", out.display()))?;
            let call = crate::plugin::Call::new(&crate::cancel::Cancel::new());
            let (output, result) = host.fetch(&loaded, &artifact, output, &call);
            let (path, size, digest) = output.finish().map_err(|e| e.to_string())?;
            match result.map_err(|e| e.to_string())? {
                Ok(()) => {
                    let verified = artifact
                        .checksum
                        .as_ref()
                        .map(|c| c.hex.eq_ignore_ascii_case(&digest));
                    json!({"fetched": path, "bytes": size, "digest": digest, "checksum_ok": verified})
                }
                Err(e) => json!({"error": format!("{e:?}"), "bytes": size}),
            }
        }
        World::Health => {
            let call = crate::plugin::Call::new(&crate::cancel::Cancel::new());
            let health = host
                .check(
                    &loaded,
                    &HealthContext {
                        plan: crate::plugin::Plan::from(&plan),
                        elapsed_ms: 0,
                        attempt: 1,
                    },
                    &call,
                )
                .map_err(|e| e.to_string())?;
            match health {
                Health::Healthy(t) => json!({"healthy": t}),
                Health::Unhealthy(t) => json!({"unhealthy": t}),
                Health::Pending(t) => json!({"pending": t}),
            }
        }
    };
    let mut answer = answer;
    answer["plugin"] = json!(spec.name);
    answer["world"] = json!(world);
    answer["call_ms"] = json!((started.elapsed().as_secs_f64() * 1e3 * 1000.0).round() / 1000.0);
    crate::output::line(answer)
}

fn read_plan(cfg: &Config, path: Option<&Path>) -> Result<Plan, String> {
    let path = path
        .map(Path::to_path_buf)
        .unwrap_or_else(|| cfg.home.join("data").join(plan::UPGRADE_INFO_FILE));
    let bytes = crate::fsutil::read_regular_path(&path, crate::layout::MAX_PLAN_FILE)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    match plan::parse(&bytes) {
        Read::Valid(p) => Ok(p),
        Read::Invalid(why) => Err(format!("{}: {why}", path.display())),
        Read::NotYet | Read::Absent => Err(format!("{} is empty or cut short", path.display())),
    }
}

fn bare_request(cfg: &Config, plan: &Plan) -> crate::plugin::Request {
    crate::plugin::Request {
        plan: crate::plugin::Plan::from(plan),
        platform: crate::plugin::platform(),
        daemon_name: cfg.name.clone(),
        staged: None,
        downloads_allowed: cfg.allow_download_binaries,
        checksum_required: cfg.download_must_have_checksum,
    }
}

fn parse_checksum(s: &str) -> Result<crate::plugin::Checksum, String> {
    let (alg, hex) = s
        .split_once(':')
        .ok_or_else(|| format!("--checksum {s:?}: use sha256:<hex> or sha512:<hex>"))?;
    let algorithm = match alg {
        "sha256" => crate::plugin::HashAlgorithm::Sha256,
        "sha512" => crate::plugin::HashAlgorithm::Sha512,
        _ => {
            return Err(format!(
                "--checksum {s:?}: use sha256:<hex> or sha512:<hex>"
            ));
        }
    };
    Ok(crate::plugin::Checksum {
        algorithm,
        hex: hex.to_ascii_lowercase(),
    })
}

pub fn decision_json(d: &Decision) -> Value {
    match d {
        Decision::UseStaged => json!({"decision": "use-staged"}),
        Decision::Refuse(r) => json!({"decision": "refuse", "reason": r}),
        Decision::Fetch(list) => json!({
            "decision": "fetch",
            "artifacts": list.iter().map(|a| json!({
                "url": a.url,
                "checksum": a.checksum.as_ref().map(|c| format!("{}:{}", match c.algorithm {
                    crate::plugin::HashAlgorithm::Sha256 => "sha256",
                    crate::plugin::HashAlgorithm::Sha512 => "sha512",
                }, c.hex)),
                "format": match a.format {
                    crate::plugin::ArchiveFormat::Auto => "auto",
                    crate::plugin::ArchiveFormat::Raw => "raw",
                    crate::plugin::ArchiveFormat::TarGz => "tar-gz",
                    crate::plugin::ArchiveFormat::Zip => "zip",
                },
            })).collect::<Vec<_>>(),
        }),
    }
}

/// `prepare-upgrade`: stages the binary of the pending plan ahead of the halt, with the same
/// resolvers and sources the upgrade uses. The plan is `--plan FILE`, else
/// `data/upgrade-info.json` if the current binary has not applied it, else the next manual plan.
pub fn prepare_upgrade(cfg: &Config, plan_file: Option<&Path>) -> Result<(), String> {
    let layout = Layout::open(cfg).map_err(|e| e.to_string())?;
    let plan = match plan_file {
        Some(p) => read_plan(cfg, Some(p))?,
        None => pending_plan(&layout)?,
    };
    let plugins = plugins(cfg, None)?;
    let set = load(cfg, &plugins)?;
    let done = crate::plugin::set::prepare(&set, cfg, &plan)
        .map_err(|e| format!("upgrade {:?}: {e}", plan.name))?;
    crate::output::line(format!(
        "upgrade {:?} (height {}): {done}",
        plan.name, plan.height
    ))
}

fn pending_plan(layout: &Layout) -> Result<Plan, String> {
    let files = crate::decide::Files::read(layout).map_err(|e| e.to_string())?;
    let dir_name = |name: &str| layout.dir_name(name).map_err(|e| e.to_string());
    let snapshot = files.snapshot(&[], None, &dir_name);
    if let Some((plan, None)) = snapshot.governance() {
        return Ok(plan.clone());
    }
    if let Some(plan) = snapshot.next_manual() {
        return Ok(plan.clone());
    }
    Err("no pending upgrade: data/upgrade-info.json is absent or already applied and no manual upgrade is scheduled; give one with --plan FILE".into())
}
