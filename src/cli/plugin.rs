//! `wasmvisor plugin list|check|compile|call`: the configured plugins, checked, compiled and
//! tried one at a time. With `--plugins FILE` they work without a node's home (no
//! `DAEMON_HOME`): a plugin author's loop.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use wasmvisor_plugin_support::getter::{self, Digest};

mod notifier;
mod resolver;
use notifier::notify;
pub use resolver::decision_json;
use resolver::{read_decision, resolve_alone};

use crate::artifact::{Download, Limits};
use crate::cancel::Cancel;
use crate::config::Config;
use crate::plugin::{
    ArchiveFormat, Artifact, Call, Compile, Decision, Health, Host, PluginSet, PluginSpec, Plugins,
    World,
};
use crate::tree::plans::{self, MAX_PLAN_FILE, UPGRADE_INFO_FILE};
use crate::tree::{Layout, Plan, Read};
use crate::upgrade::plugins::{configured, host_config, load};

pub fn list(cfg: &Config, over: Option<&Path>, json_out: bool) -> Result<(), String> {
    let plugins = configured(cfg, over).map_err(|e| e.to_string())?;
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
                "env": p.env,
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
            "{:<9} {:<16} {}  memory {} MiB, timeout {}, hosts [{}]{}{}",
            p.world.as_str(),
            p.name,
            p.origin,
            p.memory >> 20,
            crate::duration::format(p.timeout),
            p.allow_hosts
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
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
            },
            if p.env.is_empty() {
                String::new()
            } else {
                format!(", env [{}]", p.env.join(", "))
            }
        ))?;
    }
    Ok(())
}

/// `check` and `compile`: load every plugin (compiling into the cache what is not there yet).
pub fn check(cfg: &Config, over: Option<&Path>) -> Result<(), String> {
    let plugins = configured(cfg, over).map_err(|e| e.to_string())?;
    let started = Instant::now();
    let set =
        load(host_config(cfg), &plugins, Cancel::new(), Compile::Now).map_err(|e| e.to_string())?;
    let summary = set.summary();
    for (world, name, digest, version, cached) in &summary {
        crate::output::line(format!(
            "ok  {:<9} {:<16} wasmvisor:plugin@{version}  sha256 {}  {}",
            world.as_str(),
            name,
            &digest[..16],
            if *cached {
                "compiled code from the cache"
            } else {
                "compiled now, cached"
            }
        ))?;
    }
    crate::output::line(format!(
        "{} plugin(s) ready in {:.1} ms; cache {}",
        summary.len(),
        started.elapsed().as_secs_f64() * 1e3,
        cfg.plugin_cache_dir().display()
    ))
}

/// What `plugin call` does.
#[derive(clap::Args, Debug)]
pub struct CallArgs {
    /// resolver, source, health or notifier.
    world: String,
    /// The plugin's name in the configuration (bundled: cosmovisor, http).
    name: String,
    /// The plan, in upgrade-info.json format (default: data/upgrade-info.json).
    #[arg(long, value_name = "FILE")]
    plan: Option<PathBuf>,
    /// For a source: the artifact URL to fetch.
    #[arg(long, value_name = "URL")]
    artifact: Option<String>,
    /// For a source: the expected checksum, sha256:<hex> or sha512:<hex>.
    #[arg(long, value_name = "TYPE:HEX")]
    checksum: Option<String>,
    /// For a source: where to write the bytes (default: the URL's file name).
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// For a resolver: ask it alone, without the resolvers configured before it (given no
    /// decision, or the one of --previous).
    #[arg(long)]
    alone: bool,
    /// For a resolver: ask it alone, given this decision in force (JSON as `plugin call`
    /// prints one, e.g. '{"decision": "use-staged"}', or a file holding it).
    #[arg(long, value_name = "JSON|FILE")]
    previous: Option<String>,
    /// For a notifier: the kind of example notice to send (plan-known, readiness-changed,
    /// upgrade-started, phase-done, upgrade-done, upgrade-failed, rolled-back, health-verdict,
    /// signing-resumed, crash-restart, stopping), about the plan.
    #[arg(long, value_name = "KIND")]
    event: Option<String>,
}

/// `plugin call`'s exit status when the plugin answered "no": a refusal or no binary (resolver),
/// a failed fetch (source), unhealthy (health). A failed call exits 1.
pub const EXIT_ANSWERED_NO: i32 = 3;

/// Runs one plugin once, against a plan file (default: `data/upgrade-info.json`), and prints
/// its answer as JSON. Returns the exit status: 0, or `EXIT_ANSWERED_NO`.
pub fn call(cfg: &Config, over: Option<&Path>, args: CallArgs) -> Result<i32, String> {
    let world = World::parse(&args.world).ok_or_else(|| {
        format!(
            "unknown world {:?}: use resolver, source, health or notifier",
            args.world
        )
    })?;
    let plugins = configured(cfg, over).map_err(|e| e.to_string())?;
    let spec = find(&plugins, world, &args.name)?;
    let host = Arc::new(Host::new(host_config(cfg)).map_err(|e| e.to_string())?);
    let plan = match world {
        // A notice is an example: without a plan file, about an example plan.
        World::Notifier if args.plan.is_none() => {
            read_plan(cfg, None).unwrap_or_else(|_| Plan::manual("v2", 1000))
        }
        _ => read_plan(cfg, args.plan.as_deref())?,
    };
    let call = Call::new(&Cancel::new());
    let started = Instant::now();
    let Answer {
        json: mut answer,
        said_no,
    } = match world {
        World::Resolver => {
            let previous = args.previous.as_deref().map(read_decision).transpose()?;
            let alone = (args.alone || previous.is_some()).then_some(previous);
            resolve(cfg, &plugins, &host, (spec, alone), &plan)?
        }
        World::Source => fetch(&host, spec, args, &call)?,
        World::Health => check_health(&host, spec, &plan, &call)?,
        World::Notifier => notify(cfg, &host, spec, &plan, args.event.as_deref(), &call)?,
    };
    answer["plugin"] = json!(spec.name);
    answer["world"] = json!(world);
    // A first call compiles the plugin (seconds for JavaScript and Python): said apart.
    let ms = |d: Duration| json!((d.as_secs_f64() * 1e6).round() / 1000.0);
    let compiling = host.compiling();
    answer["compile_ms"] = ms(compiling);
    answer["call_ms"] = ms(started.elapsed().saturating_sub(compiling));
    crate::output::line(answer)?;
    Ok(if said_no { EXIT_ANSWERED_NO } else { 0 })
}

/// A plugin's answer to `plugin call`, and whether it said no.
pub(super) struct Answer {
    pub(super) json: Value,
    pub(super) said_no: bool,
}

/// The plugin of `world` named `name`; not finding it names the ones there are.
fn find<'a>(plugins: &'a Plugins, world: World, name: &str) -> Result<&'a PluginSpec, String> {
    plugins.find(world, name).ok_or_else(|| {
        let names: Vec<&str> = plugins
            .all()
            .filter(|p| p.world == world)
            .map(|p| p.name.as_str())
            .collect();
        format!(
            "no {world} plugin named {name:?} (configured: {})",
            if names.is_empty() {
                "none".into()
            } else {
                names.join(", ")
            }
        )
    })
}

/// A resolver's answer. The resolvers up to this one run, as in an upgrade: a policy plugin
/// sees the decision it would see for real.
fn resolve(
    cfg: &Config,
    plugins: &Plugins,
    host: &Arc<Host>,
    (spec, alone): (&PluginSpec, Option<Option<Decision>>),
    plan: &Plan,
) -> Result<Answer, String> {
    if let Some(previous) = alone {
        return resolve_alone(cfg, host, spec, plan, previous);
    }
    let upto = plugins
        .resolvers
        .iter()
        .position(|r| r.name == spec.name)
        .map_or(0, |i| i + 1);
    let mut set = PluginSet {
        host: host.clone(),
        resolvers: Vec::new(),
        sources: Vec::new(),
        health: Vec::new(),
        notifiers: Vec::new(),
        cancel: Cancel::new(),
    };
    for resolver in &plugins.resolvers[..upto] {
        set.resolvers
            .push(host.load(resolver).map_err(|e| e.to_string())?);
    }
    // Without a tree (`plugin call` anywhere), nothing is staged.
    let layout = Layout::open(cfg).ok();
    let request =
        crate::upgrade::request(&set, cfg, layout.as_ref(), plan).map_err(|e| e.to_string())?;
    let resolution = set.resolve(&request).map_err(|e| e.to_string())?;
    let mut answer = decision_json(&resolution.decision);
    answer["decided_by"] = json!(resolution.by);
    if let Some((d, by)) = &resolution.not_before {
        answer["not_before"] = json!({
            "at": d.at,
            "time": crate::logging::rfc3339(d.at),
            "reason": d.reason,
            "by": by,
        });
    }
    answer["answers"] = resolution
        .answers
        .iter()
        .map(|(name, d)| {
            let mut a = decision_json(d);
            a["plugin"] = json!(name);
            a
        })
        .collect();
    Ok(Answer {
        json: answer,
        said_no: resolution.refusal().is_some(),
    })
}

/// A source's fetch of `--artifact` into `--out`, checked against `--checksum`.
fn fetch(host: &Host, spec: &PluginSpec, args: CallArgs, call: &Call) -> Result<Answer, String> {
    let url = args
        .artifact
        .ok_or("a source needs --artifact <url> to fetch")?;
    let checksum = args.checksum.as_deref().map(parse_checksum).transpose()?;
    let algorithms: Vec<_> = checksum.iter().map(|d| d.algorithm).collect();
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
        checksum: None,
        format: ArchiveFormat::Raw,
    };
    // Loaded first: a plugin that cannot load leaves `--out` as it was.
    let source = host.load(spec).map_err(|e| e.to_string())?;
    let _ = std::fs::remove_file(&out);
    let download = Download::open_path(&out, &algorithms, Limits::default().download, &url)
        .map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let (download, result) = host.fetch(&source, &artifact, download, call);
    let download = download.ok_or("the download was lost by the plugin host")?;
    let (size, digests) = download.finish().map_err(|e| e.to_string())?;
    let path = out;
    Ok(match result.map_err(|e| e.to_string())? {
        Ok(()) => {
            let verified = checksum
                .as_ref()
                .map(|d| d.matches(digests.get(d.algorithm).unwrap_or_default()));
            Answer {
                json: json!({"fetched": path, "bytes": size, "digest": digests.sha256(), "checksum_ok": verified}),
                said_no: verified == Some(false),
            }
        }
        Err(e) => Answer {
            json: json!({"error": format!("{e:?}"), "bytes": size}),
            said_no: true,
        },
    })
}

/// A health check's verdict on the plan's upgrade.
fn check_health(
    host: &Host,
    spec: &PluginSpec,
    plan: &Plan,
    call: &Call,
) -> Result<Answer, String> {
    let check = host.load(spec).map_err(|e| e.to_string())?;
    let context = crate::upgrade::probation::health_context(plan, 0, 1);
    let health = host
        .check(&check, &context, call)
        .map_err(|e| e.to_string())?;
    let (json, said_no) = match health {
        Health::Healthy(t) => (json!({"healthy": t}), false),
        Health::Unhealthy(t) => (json!({"unhealthy": t}), true),
        Health::Pending(t) => (json!({"pending": t}), false),
    };
    Ok(Answer { json, said_no })
}

pub(super) fn read_plan(cfg: &Config, path: Option<&Path>) -> Result<Plan, String> {
    if path.is_none() && cfg.home == Path::new(DETACHED_HOME) {
        return Err("without DAEMON_HOME there is no data/upgrade-info.json: give the plan with --plan FILE (upgrade-info.json format)".into());
    }
    let path = path
        .map(Path::to_path_buf)
        .unwrap_or_else(|| cfg.home.join("data").join(UPGRADE_INFO_FILE));
    let bytes = crate::fs::read_regular_path(&path, MAX_PLAN_FILE)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    match plans::parse(&bytes) {
        Read::Valid(p) => Ok(p),
        Read::Invalid(why) => Err(format!("{}: {why}", path.display())),
        Read::NotYet | Read::Absent => Err(format!("{} is empty or cut short", path.display())),
    }
}

/// `--checksum`: a digest as a plan's `?checksum=` gives one (`sha256:<hex>`, any of md5, sha1,
/// sha256, sha512, or a bare hex whose length names the algorithm).
fn parse_checksum(s: &str) -> Result<Digest, String> {
    match getter::parse_checksum(s) {
        Ok(getter::Checksum::Digest(d)) => Ok(d),
        Ok(getter::Checksum::File(_)) => Err(format!(
            "--checksum {s:?}: give the digest itself, not a checksum file"
        )),
        Err(e) => Err(format!("--checksum {s:?}: {e}")),
    }
}

/// The home of a configuration made for `plugin` commands run without `DAEMON_HOME`: it never
/// exists, so nothing is staged and nothing of a node is read.
pub const DETACHED_HOME: &str = "/nonexistent/wasmvisor-without-a-home";

/// The configuration for `plugin ... --plugins FILE` where `DAEMON_HOME` is not set: the
/// process's environment, a home that does not exist, `DAEMON_NAME` (if unset) `daemon`, and the
/// compile cache in `WASMVISOR_PLUGIN_CACHE`, else `$XDG_CACHE_HOME/wasmvisor`, else
/// `~/.cache/wasmvisor`.
pub fn detached_config(
    file: Option<&Path>,
) -> Result<(Config, Vec<String>), crate::config::ConfigError> {
    let env = |key: &str| std::env::var(key).ok().filter(|v| !v.is_empty());
    let cache = env("WASMVISOR_PLUGIN_CACHE").or_else(|| {
        env("XDG_CACHE_HOME")
            .map(|c| format!("{c}/wasmvisor"))
            .or_else(|| env("HOME").map(|h| format!("{h}/.cache/wasmvisor")))
    });
    Config::load(file, &|key| match key {
        "DAEMON_HOME" => Some(DETACHED_HOME.into()),
        "DAEMON_NAME" => env(key).or_else(|| Some("daemon".into())),
        "WASMVISOR_PLUGIN_CACHE" => cache.clone(),
        _ => std::env::var(key).ok(),
    })
}
