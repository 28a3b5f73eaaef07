//! The planner's work, each piece off the runtime and cancelled by an upgrade's hold: the next
//! plan prepared as its upgrade would prepare it, every staged binary preflighted (a plan's, and
//! those no plan names yet), the next one read into the page cache.

use std::path::Path;
use std::time::Instant;

use super::Planner;
use crate::ahead::plans::{Inputs, Prep};
use crate::ahead::upcoming::Upcoming;
use crate::output::shorten;
use crate::tree::UPGRADES_DIR;
use crate::tree::plans::UPGRADE_INFO_FILE;
use crate::upgrade::preflight::{self, Checked, How};

impl Planner {
    /// Prepares `u` if due (never, failed and its back-off passed, or what it depends on
    /// changed).
    pub(super) async fn prepare(&mut self, u: &Upcoming) {
        let (cfg, layout) = (&self.ctx.cfg, self.ctx.layout.clone());
        let inputs = Inputs::of(cfg, &layout, &u.plan);
        let state = self.states.entry(u.plan.name.clone()).or_default();
        if !state.prep_due(&inputs, Instant::now()) {
            return;
        }
        if let Prep::Done { inputs: before, .. } | Prep::Failed { inputs: before, .. } = &state.prep
            && before.plugins_changed(&inputs)
        {
            tracing::warn!(
                "plugins.toml changed since wasmvisor started; preparing upgrade {:?} again with the plugins it loaded then, which the upgrade uses too (restart wasmvisor to use the new configuration)",
                shorten(&u.plan.name, 64)
            );
        }
        let (set, cfg, plan) = (self.ctx.plugins.clone(), cfg.clone(), u.plan.clone());
        let (cfg_w, layout_w) = (cfg.clone(), layout.clone());
        let Some(result) = self
            .work(move |cancel| {
                crate::upgrade::prepare_until(&set, &cfg_w, &layout_w, &plan, cancel)
            })
            .await
        else {
            return;
        };
        let result = result
            .map_err(|e| e.to_string())
            .and_then(|r| r.map_err(|e| e.to_string()));
        self.ctx.observer.prepared(result.is_ok());
        let after = Inputs::of(&cfg, &layout, &u.plan);
        let state = self.states.entry(u.plan.name.clone()).or_default();
        match result {
            Ok(done) => {
                tracing::info!(upgrade = %shorten(&u.plan.name, 64), "prepared ahead of the halt: {done}");
                state.prep = Prep::Done {
                    inputs: after,
                    at_unix: crate::clock::unix_secs(),
                };
            }
            Err(reason) => state.prep_failed(after, reason, Instant::now()),
        }
    }

    /// Preflights `u`'s staged binary, if there is one and it was not checked as it is (or its
    /// failure is due to be checked again).
    pub(super) async fn check(&mut self, u: &Upcoming) {
        let (cfg, layout) = (&self.ctx.cfg, self.ctx.layout.clone());
        let Ok(dir) = layout.dir_name(&u.plan.name) else {
            return;
        };
        let state = self.states.entry(u.plan.name.clone()).or_default();
        let Ok(key) = preflight::key(&layout, cfg, &dir) else {
            state.check = None;
            return;
        };
        if !state.check_due(&key, Instant::now()) {
            return;
        }
        let how = How {
            run: true,
            hash: true,
        };
        let checked = match self.run_check(dir, key, how).await {
            None => return,
            Some(Ok(checked)) => checked,
            Some(Err(e)) => {
                tracing::warn!(upgrade = %shorten(&u.plan.name, 64), "the preflight could not run: {e}");
                return;
            }
        };
        if checked.result.is_err() {
            self.ctx.observer.preflight_failed();
        }
        self.ctx.checks.put(checked.clone());
        let state = self.states.entry(u.plan.name.clone()).or_default();
        state.checked(checked, Instant::now());
    }

    /// Preflights the binaries staged for upgrades no plan names yet: every upgrade folder
    /// that `current` never pointed at (a switch writes its plan record into the folder) and
    /// that was not checked as it is. The halt of a plan nobody announced ahead then runs no
    /// `version` while the node stops. Stops at an upgrade's hold; the next look goes on.
    pub(super) async fn check_staged(&mut self, current: &str) {
        let layout = self.ctx.layout.clone();
        for dir in layout.staged() {
            let applied = Path::new(UPGRADES_DIR).join(&dir).join(UPGRADE_INFO_FILE);
            if dir == current || layout.root.metadata(&applied).is_ok() {
                continue;
            }
            let Ok(key) = preflight::key(&layout, &self.ctx.cfg, &dir) else {
                continue;
            };
            if self.ctx.checks.get(&key).is_some() {
                continue;
            }
            let how = How {
                run: true,
                hash: false,
            };
            match self.run_check(dir, key, how).await {
                Some(Ok(checked)) => self.ctx.checks.put(checked),
                _ => return,
            }
        }
    }

    /// Preflights the binary in `dir` as `how` says, as one piece of the planner's work (`None`:
    /// held, stopped or cancelled).
    async fn run_check(
        &self,
        dir: String,
        key: preflight::Key,
        how: How,
    ) -> Option<Result<Checked, crate::plugin::ThreadError>> {
        let (cfg, layout) = (self.ctx.cfg.clone(), self.ctx.layout.clone());
        let launcher = preflight::ThroughReaper(self.ctx.reaper.clone());
        self.work(move |cancel: &crate::cancel::Cancel| {
            preflight::check(&layout, &cfg, &dir, (key, how), &launcher, cancel)
        })
        .await
    }

    /// Reads the next binary (and its `lib/`) into the page cache, once per binary.
    pub(super) async fn warm(&mut self, u: &Upcoming) {
        let Some(state) = self.states.get(&u.plan.name) else {
            return;
        };
        let Some(Checked {
            key, result: Ok(_), ..
        }) = &state.check
        else {
            return;
        };
        if state.warmed.as_ref().is_some_and(|(k, _)| k == key) {
            return;
        }
        let key = key.clone();
        let mut files = vec![key.binary.clone()];
        if let Ok(dir) = self.ctx.layout.dir_name(&u.plan.name) {
            files.push(preflight::paths(&self.ctx.layout, &dir).2);
        }
        let name = shorten(&u.plan.name, 64);
        match self
            .work(move |cancel| crate::preflight::warm(&files, cancel))
            .await
        {
            None => return,
            Some(Ok(Ok(w))) => tracing::info!(
                upgrade = %name, files = w.files, bytes = w.bytes, took = %crate::duration::format(w.took),
                "the next binary was read into the page cache ahead of its halt"
            ),
            Some(Ok(Err(e))) => {
                tracing::warn!(upgrade = %name, "cannot read the next binary ahead of its halt: {e}")
            }
            Some(Err(e)) => {
                tracing::warn!(upgrade = %name, "cannot read the next binary ahead of its halt: {e}")
            }
        }
        if let Some(state) = self.states.get_mut(&u.plan.name) {
            state.warmed = Some((key, crate::clock::unix_secs()));
        }
    }
}
