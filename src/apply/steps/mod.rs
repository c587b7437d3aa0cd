//! The remote scripts of one host's transaction, built as plain text from
//! the plan and the desired state (pure, so unit-tested without hosts).
//!
//! Files are only ever written to `PATH.infra-new` beside their target, then
//! checked by the service's own parser against the whole configuration, and
//! only then renamed into place (atomic on one filesystem) after the old file
//! was kept as `PATH.infra-backup` (or marked `PATH.infra-absent`). Before the
//! first rename the host's journal records the service actions still owed;
//! it is removed only once the host is healthy. Every script goes over stdin.

use crate::catalog::{self, CheckPlan, Part};
use crate::desired::{Checker, HostState, ManagedFile, ReleaseRecord, release_marks};
use crate::facts::PENDING_JOURNAL;
use crate::plan::{ChoicePlan, FileAction, HostPlan, PackagesPlan, ReleasePlan};

pub const NEW: &str = ".infra-new";
pub const BACKUP: &str = ".infra-backup";
pub const ABSENT: &str = ".infra-absent";

pub use crate::transport::shell_quote as quote;

/// The files whose content changes (created, updated or replaced).
pub fn content_changes<'a>(plan: &HostPlan, host: &'a HostState) -> Vec<&'a ManagedFile> {
    plan.files
        .iter()
        .filter(|change| change.action != FileAction::Metadata)
        .filter_map(|change| host.file(&change.path))
        .collect()
}

/// Installs `packages`, waiting for dpkg's lock as long as
/// [`crate::debian::DPKG_LOCK_WAIT`]: a fresh cloud host's unattended-upgrades run
/// holds it for minutes at first boot.
pub fn install(packages: &[String]) -> String {
    let packages: Vec<String> = packages.iter().map(|package| quote(package)).collect();
    format!(
        "set -e\nexport DEBIAN_FRONTEND=noninteractive\n\
         apt-get install -y -q -o DPkg::Lock::Timeout={} -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold {}\n",
        crate::debian::DPKG_LOCK_WAIT.as_secs(),
        packages.join(" ")
    )
}

/// Writes every changed file to `PATH.infra-new` with its final mode and
/// owner; content travels base64-encoded inside the script, never in argv.
pub fn upload(files: &[&ManagedFile]) -> String {
    use base64::Engine;
    let mut script = String::from("set -e\numask 022\n");
    for file in files {
        let target = quote(&format!("{}{NEW}", file.path));
        let directory =
            quote(std::path::Path::new(&file.path).parent().map_or("/", |parent| parent.to_str().unwrap_or("/")));
        let encoded = base64::engine::general_purpose::STANDARD.encode(&file.content);
        script.push_str(&format!(
            "mkdir -p {directory}\nrm -f {target}\n(umask 077; base64 -d > {target} <<'INFRA_EOF'\n{encoded}\nINFRA_EOF\n)\n\
             chown {}:{} {target}\nchmod {:o} {target}\n",
            quote(&file.owner),
            quote(&file.group),
            file.mode
        ));
    }
    script
}

/// Checks the new files with each service's own parser, against the whole
/// configuration the service will read: the [`CheckPlan`] of every checker
/// a changed file has, with the new files where they changed and the
/// current ones elsewhere.
pub fn validate(host: &HostState, files: &[&ManagedFile]) -> Option<String> {
    let changed: Vec<&str> = files.iter().map(|file| file.path.as_str()).collect();
    let mut checkers: Vec<Checker> = files.iter().filter_map(|file| file.checker).collect();
    checkers.sort();
    checkers.dedup();
    let mut script = String::from("set -e\n");
    for checker in &checkers {
        script.push_str(&remote_check(&catalog::check_plan(*checker, host), &changed));
    }
    (!checkers.is_empty()).then_some(script)
}

/// One check plan as a script: lays its files out in a temporary
/// directory, runs the command there, removes the directory either way.
fn remote_check(plan: &CheckPlan, changed: &[&str]) -> String {
    let in_tree = |name: &str| format!("\"$tree\"/{}", quote(name));
    let mut script = String::from("tree=$(mktemp -d)\n");
    for (name, path) in &plan.files {
        let source = if changed.contains(&path.as_str()) { format!("{path}{NEW}") } else { path.clone() };
        if let Some((directory, _)) = name.rsplit_once('/') {
            script.push_str(&format!("mkdir -p {}\n", in_tree(directory)));
        }
        script.push_str(&format!("cp {} {}\n", quote(&source), in_tree(name)));
    }
    for borrowed in &plan.borrowed {
        script.push_str(&format!(
            "if [ -e {path} ]; then cp {path} {target}; else printf '%s' {default} > {target}; fi\n",
            path = quote(borrowed.path),
            target = in_tree(&borrowed.name),
            default = quote(borrowed.default),
        ));
    }
    for rewrite in &plan.rewrites {
        let file = in_tree(&rewrite.file);
        script.push_str(&format!(
            "sed \"s#{}#$tree/{}#g\" {file} > {file}.rewritten\nmv {file}.rewritten {file}\n",
            rewrite.from, rewrite.to
        ));
    }
    let command: Vec<String> = plan
        .command
        .iter()
        .map(|parts| {
            parts
                .iter()
                .map(|part| match part {
                    Part::Text(text) => quote(text),
                    Part::Tree(name) if name.is_empty() => "\"$tree\"".to_string(),
                    Part::Tree(name) => in_tree(name),
                })
                .collect()
        })
        .collect();
    // Everything the checker says goes to stderr, which apply reports.
    let stdout = if plan.quiet_stdout { "> /dev/null" } else { "1>&2" };
    script.push_str(&format!(
        "{} {stdout} || {{ status=$?; rm -rf \"$tree\"; exit $status; }}\nrm -rf \"$tree\"\n",
        command.join(" ")
    ));
    script
}

/// The service actions the swap makes owed, as journal lines.
pub fn owed(plan: &HostPlan) -> Vec<String> {
    let mut lines = Vec::new();
    lines.extend(plan.restart.iter().map(|change| format!("restart {}", change.name)));
    lines.extend(plan.reload.iter().map(|change| format!("reload {}", change.name)));
    lines.extend(plan.hooks.iter().map(|change| format!("hook {}", change.name.replace(' ', "_"))));
    lines
}

/// Records what is owed, keeps the old files, renames the new ones in.
pub fn swap(plan: &HostPlan, files: &[&ManagedFile], host: &HostState) -> String {
    let mut script = String::from("set -e\nmkdir -p /var/lib/infra\n");
    let owed = owed(plan);
    if !owed.is_empty() {
        script.push_str(&format!(
            "printf '%s\\n' {} > {PENDING_JOURNAL}{NEW}\nmv {PENDING_JOURNAL}{NEW} {PENDING_JOURNAL}\n",
            owed.iter().map(|line| quote(line)).collect::<Vec<_>>().join(" ")
        ));
    }
    for file in files {
        let (path, backup, absent) =
            (quote(&file.path), quote(&format!("{}{BACKUP}", file.path)), quote(&format!("{}{ABSENT}", file.path)));
        script.push_str(&format!(
            "if [ -e {path} ]; then cp -p {path} {backup}; rm -f {absent}; else rm -f {backup}; : > {absent}; fi\n\
             mv -f {} {path}\n",
            quote(&format!("{}{NEW}", file.path))
        ));
    }
    if let Some(releases) = plan.releases.as_ref().filter(|releases| releases.switch_to.is_some()) {
        script.push_str(&switch_link(&releases.link, &releases.target));
    }
    for change in plan.files.iter().filter(|change| change.action == FileAction::Metadata) {
        if let Some(file) = host.file(&change.path) {
            let path = quote(&file.path);
            script.push_str(&format!(
                "chown {}:{} {path}\nchmod {:o} {path}\n",
                quote(&file.owner),
                quote(&file.group),
                file.mode
            ));
        }
    }
    script
}

/// Daemon-reload when a unit changed, enable, restart/reload/start, then hooks.
pub fn services(plan: &HostPlan, host: &HostState) -> Option<String> {
    let mut script = String::from("set -e\n");
    if plan.files.iter().any(|file| file.path.starts_with("/etc/systemd/")) {
        script.push_str("systemctl daemon-reload\n");
    }
    for unit in &plan.retire {
        script.push_str(&format!("systemctl disable -q --now {}\n", quote(unit)));
    }
    for service in &plan.enable {
        script.push_str(&format!("systemctl enable -q {}\n", quote(service)));
    }
    for (verb, changes) in [("restart", &plan.restart), ("reload", &plan.reload)] {
        for change in changes {
            script.push_str(&format!("systemctl {verb} {}\n", quote(&change.name)));
        }
    }
    for service in &plan.start {
        // Installing a package may have started it with its default
        // config. No package provides a socket, and restarting one would
        // restart the service it feeds (a restart of that service may
        // have started it already).
        let verb = if service.ends_with(".socket") { "start" } else { "restart" };
        script.push_str(&format!("systemctl {verb} {}\n", quote(service)));
    }
    for change in &plan.hooks {
        if let Some(hook) = host.hooks.iter().find(|hook| hook.name == change.name) {
            script.push_str(&format!("{}\n", hook.command));
        }
    }
    (script != "set -e\n").then_some(script)
}

/// A database backup before anything that could lose data: MariaDB
/// restarted or fed SQL. Only where the backup script is installed and
/// the server runs (a first apply has nothing to back up yet); a failed
/// backup stops the host's transaction before anything is swapped in.
pub fn backup_first(plan: &HostPlan, host: &HostState) -> Option<String> {
    let restarted = plan.restart.iter().map(|change| change.name.as_str());
    let risky = catalog::mariadb::is_risky(restarted, !plan.hooks.is_empty());
    (host.backups.as_ref().is_some_and(|backups| backups.before_apply) && risky).then(catalog::mariadb::backup_now)
}

/// Consecutive passes a host's health checks need: a reload returns before
/// the new workers serve, so one pass could still be the old configuration.
const HEALTHY_RISE: u32 = 3;

/// All health checks together must pass [`HEALTHY_RISE`] times in a row,
/// half a second apart, within `seconds`. On failure it shows the last
/// failure it saw (a check run again could pass on a worker that is still
/// draining, and say nothing), then what the host's services logged
/// meanwhile: an app that answers 500 explains itself in its own log.
pub fn health(host: &HostState, seconds: u32) -> Option<String> {
    if host.health_checks.is_empty() {
        return None;
    }
    let mut all_pass = String::from("all_pass() {\n");
    for check in &host.health_checks {
        all_pass.push_str(&format!(
            "  output=$({command} 2>&1) || {{ failed={description}; failed_output=$output; return 1; }}\n",
            command = check.command,
            description = quote(&format!("health check failed: {}", check.description)),
        ));
    }
    all_pass.push_str("}\n");
    // The services' logs first and the failed check last: an error shows
    // the end of this output, and the check's own words matter most.
    let mut report = String::new();
    for service in &host.services {
        report.push_str(&service_log(&service.name, seconds + 10));
    }
    report.push_str("  echo \"$failed\" >&2\n  [ -z \"$failed_output\" ] || echo \"$failed_output\" >&2\n");
    Some(format!(
        "{all_pass}passes=0\ntries=0\nwhile [ $passes -lt {HEALTHY_RISE} ]; do\n\
         if all_pass; then passes=$((passes + 1)); else passes=0; fi\n\
         tries=$((tries + 1))\n\
         if [ $passes -lt {HEALTHY_RISE} ] && [ $tries -ge {attempts} ]; then\n{report}  exit 1\nfi\n\
         [ $passes -lt {HEALTHY_RISE} ] && sleep 0.5\ndone\nexit 0\n",
        attempts = seconds * 2,
    ))
}

/// The last 30 lines `unit` logged in the last `seconds`, each prefixed
/// with its name, on stderr. Access-log lines (`"GET / HTTP/1.0" 200`) are
/// left out: under load they would push the app's own error out of view.
fn service_log(unit: &str, seconds: u32) -> String {
    format!(
        "  journalctl -u {unit} --since -{seconds}s --no-pager -o cat 2>/dev/null \\\n    \
         | grep -v -E '\"[A-Z]+ [^\"]* HTTP/[0-9.]+\" [0-9]{{3}} ' | tail -n 30 | sed 's/^/  {name}: /' >&2\n",
        unit = quote(unit),
        name = unit.replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', "_"),
    )
}

/// A managed path and its apply-time siblings, each quoted for the shell:
/// the staged new version, the kept old one, and the marker that there was
/// none.
struct Forms {
    path: String,
    backup: String,
    absent: String,
    new: String,
}

impl Forms {
    fn of(path: &str) -> Forms {
        Forms {
            path: quote(path),
            backup: quote(&format!("{path}{BACKUP}")),
            absent: quote(&format!("{path}{ABSENT}")),
            new: quote(&format!("{path}{NEW}")),
        }
    }
}

/// Points `link` at `target` by renaming a new link over it (atomic: the
/// path is a valid link at every moment), the old link kept as its backup.
pub fn switch_link(link: &str, target: &str) -> String {
    let Forms { path, backup, absent, new } = Forms::of(link);
    format!(
        "if [ -L {path} ]; then rm -f {backup}; cp -P {path} {backup}; rm -f {absent}; else rm -f {backup}; : > {absent}; fi\n\
         rm -f {new}\nln -s {} {new}\nmv -T {new} {path}\n",
        quote(target)
    )
}

/// Puts the link back as it was before [`switch_link`].
fn restore_link(link: &str) -> String {
    let Forms { path, backup, absent, new } = Forms::of(link);
    format!(
        "rm -f {new}\nif [ -e {absent} ]; then rm -f {path} {absent}; elif [ -L {backup} ]; then mv -T {backup} {path}; fi\n"
    )
}

/// Shell lines writing `record` into the release `directory`.
fn write_record(directory: &str, record: &ReleaseRecord) -> String {
    write_json(&format!("{directory}/{}", release_marks::RECORD), record)
}

/// Shell lines writing `value` as one line of JSON to `path`: serialized
/// here and passed through a quoted heredoc, so no value is ever shell.
fn write_json(path: &str, value: &impl serde::Serialize) -> String {
    let json = serde_json::to_string(value).unwrap_or_default();
    let encoded = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, format!("{json}\n"));
    format!("base64 -d > {} <<'INFRA_EOF'\n{encoded}\nINFRA_EOF\n", quote(path))
}

/// Shell lines appending release ids to the host's migration ledger.
fn append_to_ledger<'a>(ids: impl IntoIterator<Item = &'a String>) -> String {
    let ids: Vec<String> = ids.into_iter().map(|id| quote(id)).collect();
    if ids.is_empty() {
        return String::new();
    }
    format!("mkdir -p /var/lib/infra\nprintf '%s\\n' {} >> {}\n", ids.join(" "), quote(release_marks::MIGRATION_LEDGER))
}

/// What the host's release choice becomes once it is healthy: `by` and
/// `at` complete a recorded one. Written with the commit, so a host that
/// failed keeps the choice it had.
pub fn settle_choice(release: &ReleasePlan, by: &str, at: &str) -> String {
    match &release.choice {
        ChoicePlan::Keep => String::new(),
        ChoicePlan::Forget => choice_script(None),
        ChoicePlan::Record(choice) => {
            let choice = crate::desired::ReleaseChoice { by: by.to_string(), at: at.to_string(), ..choice.clone() };
            choice_script(Some(&choice))
        }
    }
}

/// Shell lines recording `choice` as the host's release choice, or
/// forgetting the one it has.
pub fn choice_script(choice: Option<&crate::desired::ReleaseChoice>) -> String {
    match choice {
        None => format!("rm -f {}\n", quote(release_marks::CHOICE)),
        Some(choice) => format!("mkdir -p /var/lib/infra\n{}", write_json(release_marks::CHOICE, choice)),
    }
}

/// The first lines of the release steps that outlive a killed apply on the
/// host (unpacking, installing packages, migrating: the SSH session ends,
/// the script does not): each waits for the same host-wide lock, held by
/// the script and its children, so the next run never rebuilds a `.venv`
/// or migrates while an orphan of the last one still does.
const RELEASE_STEP_LOCK: &str = "mkdir -p /var/lib/infra\nexec 9>/var/lib/infra/release-step.lock\nflock -w 900 9 || { echo 'another release step on this host has held its lock for 15 minutes' >&2; exit 1; }\n";

/// Writes a release new to the host into a hidden directory beside the
/// others and renames it into place once whole (marked `.infra-complete`):
/// nothing serves it yet, so it needs no staging, and a killed apply leaves
/// no release that looks complete.
pub fn unpack(
    release: &ReleasePlan,
    files: &[(String, std::sync::Arc<[u8]>)],
    environment: &str,
    record: &ReleaseRecord,
) -> Option<String> {
    use base64::Engine;
    use release_marks::COMPLETE;
    let id = release.switch_to.as_deref().filter(|_| release.new)?;
    let (target, partial) =
        (quote(&format!("{}/{id}", release.directory)), quote(&format!("{}/.{id}.partial", release.directory)));
    let mut script = format!(
        "set -e\n{RELEASE_STEP_LOCK}umask 022\nrm -rf {partial}\n[ -e {target}/{COMPLETE} ] || rm -rf {target}\nmkdir -p {partial}\n"
    );
    for (relative, content) in files {
        let path = format!("{}/.{id}.partial/{relative}", release.directory);
        let parent = std::path::Path::new(&path).parent().and_then(|parent| parent.to_str()).unwrap_or("/");
        let encoded = base64::engine::general_purpose::STANDARD.encode(content);
        script.push_str(&format!(
            "mkdir -p {}\nbase64 -d > {} <<'INFRA_EOF'\n{encoded}\nINFRA_EOF\n",
            quote(parent),
            quote(&path)
        ));
    }
    script.push_str(&link_shared(release, &format!("{}/.{id}.partial", release.directory)));
    script.push_str(&write_record(&format!("{}/.{id}.partial", release.directory), record));
    script.push_str(&format!(
        "printf '%s' {} > {}\n",
        quote(environment),
        quote(&format!("{}/.{id}.partial/{}", release.directory, release_marks::ENVIRONMENT))
    ));
    script.push_str(&format!("touch {partial}/{COMPLETE}\nmv -T {partial} {target}\n"));
    Some(script)
}

/// Each shared directory (`app.shared`) made if missing, owned by the
/// app's user (what is in it stays as it is), and linked into the release
/// being unpacked at `partial`, in place of whatever the source had there.
fn link_shared(release: &ReleasePlan, partial: &str) -> String {
    let root = crate::desired::shared_root(&release.directory);
    let user = catalog::gunicorn::USER;
    let mut script = String::new();
    for directory in &release.shared {
        let (shared, link) = (format!("{root}/{directory}"), format!("{partial}/{directory}"));
        let parent =
            |path: &str| std::path::Path::new(path).parent().and_then(|parent| parent.to_str()).map(String::from);
        let (shared_parent, link_parent) = (parent(&shared).unwrap_or_default(), parent(&link).unwrap_or_default());
        script.push_str(&format!(
            "mkdir -p {}
install -d -o {user} -g {user} -m 0750 {}
mkdir -p {}
rm -rf {}
ln -s {} {}
",
            quote(&shared_parent),
            quote(&shared),
            quote(&link_parent),
            quote(&link),
            quote(&shared),
            quote(&link),
        ));
    }
    script
}

/// Where wheelhouses are unpacked on hosts, one directory per
/// [`PackagesPlan::wheelhouse_key`].
const WHEELHOUSES: &str = "/var/lib/infra/wheels";

/// Where an app host keeps the wheels it built from source distributions,
/// per Python and machine (`cp313-x86_64`): built once for every later
/// release.
const BUILT_WHEELS: &str = "/var/cache/infra/built-wheels";

/// Builds a wheel from each source distribution of the wheelhouse
/// `wheels` (see [`crate::wheels::SOURCES`]) that this host has not built
/// before, as the app's user in a scratch directory, with the build's
/// requirements from the wheelhouse and `app.build_packages` installed;
/// sets `built` to the directory of built wheels. Every failing build is
/// reported, each with the line of its output that says why.
fn build_sources(wheels: &str) -> String {
    use crate::wheels::{BUILD_REQUIREMENTS, SOURCES};
    let user = catalog::gunicorn::USER;
    let (sources, build_requirements) =
        (quote(&format!("{wheels}/{SOURCES}")), quote(&format!("{wheels}/{SOURCES}/{BUILD_REQUIREMENTS}")));
    format!(
        r#"tag=$(/usr/bin/python3 -c 'import platform, sys; print("cp%d%d-%s" % (sys.version_info[0], sys.version_info[1], platform.machine()))')
built={BUILT_WHEELS}/$tag
mkdir -p "$built"
failed=''
for source in {sources}/*.tar.gz; do
  [ -e "$source" ] || continue
  name=${{source##*/}}
  name=${{name%.tar.gz}}
  [ -e "$built/$name.built" ] && continue
  scratch=$(mktemp -d /tmp/infra-build.XXXXXX)
  chown {user}:{user} "$scratch"
  # shellcheck disable=SC2016 # expanded by the inner shell
  if runuser -u {user} -- env HOME="$scratch" TMPDIR="$scratch" sh -c '
      set -e
      /usr/bin/python3 -m venv --without-pip "$1/env"
      pip="$(ls "$2"/pip-*.whl | head -n 1)/pip"
      "$1/env/bin/python" "$pip" install --quiet --no-index --no-cache-dir --disable-pip-version-check --find-links "$2" -r "$3"
      "$1/env/bin/python" "$pip" wheel --no-index --no-cache-dir --disable-pip-version-check --no-deps --no-build-isolation --use-pep517 --find-links "$2" -w "$1/out" "$4"
    ' sh "$scratch" {wheelhouse} {build_requirements} "$source" > "$scratch/log" 2>&1; then
    cp "$scratch"/out/*.whl "$built"/
    touch "$built/$name.built"
  else
    cause=$(grep -E '(Error|Exception):|^error:' "$scratch/log" | grep -v -e subprocess-exited -e 'See above' -e metadata-generation-failed -e 'originates from a subprocess' | tail -n 1 | sed 's/^[[:space:]]*//')
    [ -n "$cause" ] || cause=$(tail -n 1 "$scratch/log")
    echo "$name: building its wheel failed on $(uname -n): $cause" >&2
    failed="$failed $name"
  fi
  rm -rf "$scratch"
done
if [ -n "$failed" ]; then
  echo "these have no wheel for this host and are built here from source: name what their builds need (a compiler, headers) in app.build_packages" >&2
  exit 1
fi
"#,
        wheelhouse = quote(wheels),
    )
}

/// Makes the release's `.venv` before anything is swapped in: hard links
/// of another release's packages when the requirements match (nothing is
/// installed), else an offline install from `wheelhouse` (a tar of wheels,
/// pip's own among them) with the host's Python. The digest marker is
/// written last: a `.venv` without it is rebuilt, never used.
pub fn packages(release: &ReleasePlan, wheelhouse: Option<&[u8]>) -> Option<String> {
    let packages = release.packages.as_ref()?;
    let root = format!(
        "{}/{}",
        release.directory,
        release.switch_to.as_deref().unwrap_or_else(|| release.current.as_deref().unwrap_or_default())
    );
    let venv = quote(&format!("{root}/.venv"));
    let mut script = format!("set -e\n{RELEASE_STEP_LOCK}rm -rf {venv}\n");
    match packages {
        PackagesPlan::Reuse { digest: _, from } => {
            let donor = format!("{}/{from}/.venv", release.directory);
            script.push_str(&format!(
                "cp -al {} {venv}\n# Scripts name their interpreter by path: point them at this release's.\n\
                 for f in {venv}/bin/*; do [ -L \"$f\" ] || sed -i \"s#{donor}#{root}/.venv#g\" \"$f\"; done\n",
                quote(&donor),
            ));
        }
        PackagesPlan::Install { file, added, .. } => {
            use base64::Engine;
            let key = packages.wheelhouse_key().unwrap_or_default();
            let wheels = quote(&format!("{WHEELHOUSES}/{key}"));
            let encoded = base64::engine::general_purpose::STANDARD.encode(wheelhouse.unwrap_or_default());
            let requirements = quote(&format!("{root}/{file}"));
            let added: String = added.iter().map(|requirement| format!(" {}", quote(requirement))).collect();
            script.push_str(&format!(
                "if [ ! -e {wheels}/.complete ]; then\n  rm -rf {wheels}\n  mkdir -p {wheels}\n  \
                 base64 -d <<'INFRA_EOF' | tar -x -C {wheels}\n{encoded}\nINFRA_EOF\n  touch {wheels}/.complete\nfi\n"
            ));
            script.push_str(&build_sources(&format!("{WHEELHOUSES}/{key}")));
            script.push_str(&format!(
                "/usr/bin/python3 -m venv --without-pip {venv}\n\
                 {venv}/bin/python $(ls {wheels}/pip-*.whl | head -n 1)/pip install --quiet --no-index --no-cache-dir \
                 --disable-pip-version-check --find-links {wheels} --find-links \"$built\" -r {requirements}{added} 1>&2\n"
            ));
        }
    }
    let digest = match packages {
        PackagesPlan::Reuse { digest, .. } | PackagesPlan::Install { digest, .. } => digest,
    };
    let marker = quote(&format!("{root}/{}", release_marks::PACKAGES));
    script.push_str(&format!("echo {} > {marker}\n", quote(digest)));
    Some(script)
}

/// Imports the release's WSGI module the way a Gunicorn worker will (as
/// the app's user, with its environment and packages) before anything is
/// swapped in: an app that crashes at import stops the apply with its own
/// traceback while the host still serves the release it served.
pub fn import_check(release: &ReleasePlan, module: &str) -> Option<String> {
    let id = release.switch_to.as_deref()?;
    let words = ["python3", "-c", "import importlib, sys; importlib.import_module(sys.argv[1])", module];
    Some(as_app(&format!("{}/{id}", release.directory), &words))
}

/// Runs the release's migration before anything is swapped in, like
/// [`import_check`]. Its own output is what a failure reports.
pub fn migrate(release: &ReleasePlan) -> Option<String> {
    let words = release.migrate.as_ref()?;
    let id = release.switch_to.as_deref()?;
    let directory = format!("{}/{id}", release.directory);
    // Recorded the moment it succeeds: whatever happens to this host
    // next, the database has migrated.
    Some(format!(
        "set -e\n{RELEASE_STEP_LOCK}{}touch {}\n{}",
        as_app(&directory, words),
        quote(&format!("{directory}/{}", release_marks::MIGRATED)),
        append_to_ledger([&id.to_string()]),
    ))
}

/// The release's `before_switch` (`after: false`) or `after_switch`
/// commands, run in the release the host switches to, in order; the first
/// that fails stops the script with its own output and status.
pub fn switch_hooks(release: &ReleasePlan, after: bool) -> Option<String> {
    let id = release.switch_to.as_deref()?;
    let commands = if after { &release.after_switch } else { &release.before_switch };
    if commands.is_empty() {
        return None;
    }
    let directory = format!("{}/{id}", release.directory);
    Some(commands.iter().map(|words| as_app(&directory, words)).collect())
}

/// Lists a release's static files on this host for
/// [`crate::static_files::parse_listing`]: a directory of the release as it
/// is, or what the build commands (`app.static.build`) leave in an empty
/// `STATIC_ROOT`, each run in the release as the app.
pub fn static_files(release: &ReleasePlan, publish: &crate::plan::StaticPublish) -> String {
    let directory = format!("{}/{}", release.directory, publish.release);
    match &publish.source {
        crate::desired::StaticSource::Directory(inside) => {
            crate::static_files::listing_script(&format!("{directory}/{inside}"))
        }
        crate::desired::StaticSource::Build(commands) => {
            let root = crate::static_files::build_directory(&release.directory, &publish.release);
            let with_root = |words: &Vec<String>| {
                let mut all = vec!["env".to_string(), format!("STATIC_ROOT={root}")];
                all.extend(words.iter().cloned());
                all
            };
            let commands: String = commands.iter().map(|words| as_app(&directory, &with_root(words))).collect();
            crate::static_files::build_script(&root, &commands)
        }
    }
}

/// A command run as the app's user in `directory` (a release), as
/// [`catalog::gunicorn::app_command`] runs it, with the environment file
/// as this apply will leave it; its output goes to stderr.
fn as_app(directory: &str, words: &[impl AsRef<str>]) -> String {
    // The staged environment file when it changes (on a first apply, the
    // only one).
    let command =
        catalog::gunicorn::app_command(directory, "\"$environment\"", words, catalog::gunicorn::Streams::Pipe);
    format!(
        "environment={env}\n[ -e \"$environment{NEW}\" ] && environment=\"$environment{NEW}\"\n\
         # shellcheck disable=SC2016 # the failure message shows the command as written\n\
         {command} < /dev/null 1>&2 || \\\n  \
         {{ status=$?; echo {shown}\" exited with status $status\" >&2; exit 1; }}\n",
        shown = quote(&format!("`{}`", words.iter().map(|word| word.as_ref()).collect::<Vec<_>>().join(" "))),
        env = catalog::APP_ENVIRONMENT.path,
    )
}

/// Removes what a failed apply made of a release new to the host, so it
/// never counts as one.
pub fn forget_new_release(plan: &HostPlan) -> String {
    match plan.releases.as_ref().filter(|release| release.new) {
        Some(release) => match &release.switch_to {
            Some(id) => format!("rm -rf {}\n", quote(&format!("{}/{id}", release.directory))),
            None => String::new(),
        },
        None => String::new(),
    }
}

/// Forgets the backups and the journal: the host is converged and healthy.
/// Old releases go now, and release directories a rolled-back apply left
/// empty.
pub fn commit(plan: &HostPlan, files: &[&ManagedFile]) -> String {
    let mut script = format!("rm -f {PENDING_JOURNAL}\n");
    if let Some(releases) = &plan.releases {
        script.push_str(&format!(
            "rm -f {} {}\n",
            quote(&format!("{}{BACKUP}", releases.link)),
            quote(&format!("{}{ABSENT}", releases.link))
        ));
        // The host passed its health checks on this release: it counts,
        // and a rollback may come back to it.
        if let Some(serving) = releases.switch_to.as_ref().or(releases.current.as_ref()) {
            script.push_str(&format!(
                "touch {}\n",
                quote(&format!("{}/{serving}/{}", releases.directory, release_marks::HEALTHY))
            ));
        }
        script.push_str(&append_to_ledger(&releases.record_migrations));
        for id in &releases.prune {
            script.push_str(&format!("rm -rf {}\n", quote(&format!("{}/{id}", releases.directory))));
        }
        script.push_str(&format!(
            "find {} -mindepth 1 -maxdepth 1 -type d -empty -delete 2>/dev/null || true\n",
            quote(&releases.directory)
        ));
    }
    for file in files {
        script.push_str(&format!(
            "rm -f {} {}\n",
            quote(&format!("{}{BACKUP}", file.path)),
            quote(&format!("{}{ABSENT}", file.path))
        ));
    }
    script
}

/// Removes new files that were never swapped in.
pub fn discard(files: &[&ManagedFile]) -> String {
    let paths: Vec<String> = files.iter().map(|file| quote(&format!("{}{NEW}", file.path))).collect();
    format!("rm -f {}\n", paths.join(" "))
}

/// Puts the old files back and the services back on them: services that ran
/// before are restarted on the old configuration, those this apply started
/// are stopped.
pub fn rollback(plan: &HostPlan, files: &[&ManagedFile]) -> String {
    let mut script = String::new();
    // The link first: it must never point at a release being removed.
    if let Some(releases) = plan.releases.as_ref().filter(|releases| releases.switch_to.is_some()) {
        script.push_str(&restore_link(&releases.link));
    }
    for file in files {
        let Forms { path, backup, absent, new } = Forms::of(&file.path);
        script.push_str(&format!(
            "rm -f {new}\nif [ -e {absent} ]; then rm -f {path} {absent}; elif [ -e {backup} ]; then mv -f {backup} {path}; fi\n"
        ));
    }
    script.push_str(&forget_new_release(plan));
    script.push_str("systemctl daemon-reload\n");
    // Stopped first: a socket this apply started holds the port the old
    // service listens on by itself.
    for service in &plan.start {
        script.push_str(&format!("systemctl stop {} || true\n", quote(service)));
    }
    for change in plan.restart.iter().chain(&plan.reload) {
        script.push_str(&format!("systemctl restart {} || true\n", quote(&change.name)));
    }
    for unit in &plan.retire {
        script.push_str(&format!("systemctl enable -q --now {} || true\n", quote(unit)));
    }
    script.push_str(&format!("rm -f {PENDING_JOURNAL}\n"));
    script
}

#[cfg(test)]
mod tests;
