//! The app's releases on real lab hosts: a new source is a new release,
//! switched in under load with no failed request; `infra rollback` goes
//! back in seconds without unpacking anything; old releases are pruned,
//! the current and previous never.

use super::*;

impl Lab {
    /// `infra releases --format json`: app-01's entry.
    fn releases(&self) -> serde_json::Value {
        self.releases_of(&self.inventory)
    }

    /// [`Lab::releases`] as `inventory` sees them (its `inventory` release).
    fn releases_of(&self, inventory: &Path) -> serde_json::Value {
        let output = self.command().args(["releases", "--format", "json", "-i"]).arg(inventory).output();
        let output = output.expect("infra runs");
        assert_success(&output, "releases");
        let document: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
        document["hosts"][0].clone()
    }

    /// The release directory Gunicorn's master runs in on app-01.
    fn serving_release(&self) -> String {
        let cwd = self.ssh_ok(&address("app-01"), "readlink /proc/$(systemctl show -p MainPID --value infra-app)/cwd");
        cwd.trim().rsplit('/').next().unwrap_or_default().to_string()
    }

    /// A copy of the example app with `marker` appended to its code, and an
    /// inventory deploying it (with `keep` releases).
    fn app_version(&self, marker: &str, keep: u32) -> PathBuf {
        self.app_version_with(marker, keep, None)
    }

    /// [`Lab::app_version`] whose app also imports a PyPI package it adds
    /// to its requirements: `(the requirement line, the module)`.
    pub(crate) fn app_version_with(&self, marker: &str, keep: u32, package: Option<(&str, &str)>) -> PathBuf {
        self.app_version_changed(marker, AppChange { keep, package, ..AppChange::default() })
    }

    /// A copy of the example app changed as `change` says, and an inventory
    /// deploying it.
    fn app_version_changed(&self, marker: &str, change: AppChange) -> PathBuf {
        let source = self.state.path().join(format!("app-{marker}"));
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/app");
        let copied = Command::new("cp").arg("-rT").arg(&example).arg(&source).status().expect("cp runs");
        assert!(copied.success(), "copy of the example app");
        let append = |file: &str, text: &str| {
            let path = source.join(file);
            let before = std::fs::read_to_string(&path).unwrap_or_default();
            std::fs::write(&path, format!("{before}{text}")).expect("write");
        };
        append("app.py", &format!("\n# release {marker}\n{}", change.code));
        if let Some((requirement, module)) = change.package {
            append("requirements.txt", requirement);
            append("app.py", &format!("import {module}  # noqa: E402\n"));
        }
        for (name, text) in change.files {
            let path = source.join(name);
            std::fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
            std::fs::write(path, text).expect("write");
        }
        for (name, migration) in change.migrations {
            std::fs::write(source.join("migrations/versions").join(format!("{name}.py")), migration).expect("write");
        }
        let text = std::fs::read_to_string(&self.inventory).expect("inventory");
        let from = format!("source: {}/examples/app", env!("CARGO_MANIFEST_DIR"));
        assert!(text.contains(&from), "the lab inventory deploys the example app");
        let settings = format!("source: {}\n  keep_releases: {}", source.display(), change.keep.max(2));
        let path = self.state.path().join(format!("inventory-{marker}.yml"));
        std::fs::write(&path, text.replacen(&from, &settings, 1)).expect("write");
        path
    }
}

/// How a test's copy of the example app differs from it.
#[derive(Default)]
pub(crate) struct AppChange<'a> {
    pub keep: u32,
    /// A requirement line to add, and the module the app then imports.
    pub package: Option<(&'a str, &'a str)>,
    /// Alembic migrations to add: file name (without `.py`) and code.
    pub migrations: Vec<(&'a str, String)>,
    /// Code appended to `app.py`.
    pub code: &'a str,
    /// Files written into the copy: path (relative to it) and text.
    pub files: Vec<(&'a str, String)>,
}

pub(crate) fn releases_switch_under_load_and_roll_back_in_seconds(lab: &Lab) {
    let first = lab.releases();
    let v1 = first["current"].as_str().expect("a current release").to_string();
    assert_eq!(first["inventory"], v1.as_str(), "{first}");
    assert_eq!(lab.serving_release(), v1);

    let v2_inventory = lab.app_version("v2", 5);
    apply_under_load(lab, &v2_inventory, "apply of a new app release");
    let second = lab.releases();
    let v2 = second["current"].as_str().expect("a current release").to_string();
    assert_ne!(v2, v1);
    assert_eq!(second["releases"].as_array().map(Vec::len), Some(2), "{second}");
    assert_eq!(lab.serving_release(), v2, "Gunicorn serves the new release after its graceful reload");

    let started = Instant::now();
    let rollback = rollback_under_load(lab, &v2_inventory);
    eprintln!("rollback to the previous release: {:.1} s under load", started.elapsed().as_secs_f64());
    let stderr = String::from_utf8_lossy(&rollback.stderr);
    assert!(stderr.contains(&format!("serves release {v1}")), "{stderr}");
    assert!(stderr.contains(&format!("apply keeps release {v1} until")), "{stderr}");
    assert_eq!(lab.releases()["current"], v1.as_str());
    assert_eq!(lab.serving_release(), v1);
    // The inventory still names v2, but the rollback was a choice: apply
    // keeps v1 and says why, until the inventory's source changes.
    let plan = lab.plan(&v2_inventory, &["--no-progress"]);
    let text = format!("{}{}", String::from_utf8_lossy(&plan.stdout), String::from_utf8_lossy(&plan.stderr));
    assert!(text.contains(&format!("app-01 keeps release {v1}, which `infra rollback` put there")), "{text}");
    assert!(!text.contains("from release"), "{text}");

    // Keeping two: deploying v3 removes v1, never the current (v2 after
    // the re-deploy) or the new one.
    let redeploy = lab.deploy(&v2_inventory, &[]);
    assert_success(&redeploy, "re-deploy of v2");
    let said = format!("{}{}", String::from_utf8_lossy(&redeploy.stdout), String::from_utf8_lossy(&redeploy.stderr));
    assert!(said.contains(&format!("from release {v1} to release {v2}")), "deploy goes to v2: {said}");
    assert!(!said.contains("+ create"), "v2 is still unpacked: switching back uploads nothing: {said}");
    assert_eq!(lab.serving_release(), v2);
    let v3_inventory = lab.app_version("v3", 2);
    let plan = String::from_utf8_lossy(&lab.plan(&v3_inventory, &["--no-progress"]).stdout).into_owned();
    assert!(plan.contains(&format!("remove release {v1}")), "{plan}");
    assert_success(&lab.apply(&v3_inventory, &[]), "apply of v3 keeping two releases");
    let third = lab.releases();
    let kept: Vec<&str> =
        third["releases"].as_array().expect("releases").iter().filter_map(|release| release["id"].as_str()).collect();
    assert_eq!(kept.len(), 2, "{third}");
    assert!(kept.contains(&v2.as_str()) && !kept.contains(&v1.as_str()), "{third}");
    assert_success(&lab.apply(&lab.inventory, &[]), "apply back to the example app");
    assert_eq!(lab.serving_release(), v1);
}

/// A release that names PyPI packages gets them, though the hosts have no
/// route out: infra downloads the wheels here and the host installs them
/// offline into the release's own `.venv`. The next release with the same
/// requirements installs nothing: it hard-links them.
pub(crate) fn a_release_brings_its_own_packages_and_code_only_releases_reuse_them(lab: &Lab) {
    let package = Some(("humanize==4.11.0\n", "humanize"));
    let with_packages = lab.app_version_with("pkg1", 5, package);
    let plan = String::from_utf8_lossy(&lab.plan(&with_packages, &["--no-progress"]).stdout).into_owned();
    assert!(
        plan.contains("install the release's packages from requirements.txt") && plan.contains("humanize"),
        "{plan}"
    );
    let started = Instant::now();
    let first = apply_under_load(lab, &with_packages, "apply of a release with PyPI packages");
    let first_seconds = started.elapsed().as_secs_f64();
    assert!(String::from_utf8_lossy(&first.stderr).contains("app-01: installing the release's packages"));
    let version = lab.ssh_ok(
        &address("app-01"),
        "/srv/app/current/.venv/bin/python -c 'import humanize; print(humanize.__version__)'",
    );
    assert_eq!(version.trim(), "4.11.0");
    assert!(
        !lab.ssh(&address("app-01"), "python3 -c 'import humanize'").status.success(),
        "Debian's Python has no humanize: the venv's came from the wheelhouse"
    );

    let code_only = lab.app_version_with("pkg2", 5, package);
    let plan = String::from_utf8_lossy(&lab.plan(&code_only, &["--no-progress"]).stdout).into_owned();
    assert!(plan.contains("= reuse the packages of release"), "{plan}");
    let started = Instant::now();
    let second = apply_under_load(lab, &code_only, "apply of a code-only release");
    let second_seconds = started.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        stderr.contains("linking the packages of an earlier release")
            && !stderr.contains("installing the release's packages"),
        "{stderr}"
    );
    eprintln!(
        "release with packages: first apply {first_seconds:.1} s, code-only apply {second_seconds:.1} s (no install)"
    );
    let version = lab.ssh_ok(
        &address("app-01"),
        "/srv/app/current/.venv/bin/python -c 'import humanize; print(humanize.__version__)'",
    );
    assert_eq!(version.trim(), "4.11.0");

    // docopt 0.6.2 is published as source only (pure Python): infra ships
    // its source distribution, and the app host builds its wheel.
    let source_only = lab.app_version_with("sdist", 5, Some(("docopt==0.6.2\n", "docopt")));
    assert_success(&lab.deploy(&source_only, &[]), "deploy of a release with a source-only package");
    let version = lab
        .ssh_ok(&address("app-01"), "/srv/app/current/.venv/bin/python -c 'import docopt; print(docopt.__version__)'");
    assert_eq!(version.trim(), "0.6.2");
    assert!(counter_at(&lab.vip) > 0, "the release with docopt serves");
    assert_success(&lab.apply(&lab.inventory, &[]), "apply back to the example app");
}

/// The Gunicorn the app's responses through the virtual IP say served
/// them (`SERVER_SOFTWARE`, set by the worker the master forked).
fn server_at(vip: &str) -> String {
    let (status, body) = http_get(vip, "/").expect("the virtual IP answers");
    assert_eq!(status, 200, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap_or_else(|_| panic!("the app's JSON, got {body}"));
    json["server"].as_str().unwrap_or_default().to_string()
}

/// Issue 27: a release's `.venv` sees no Debian package and serves with
/// its own Gunicorn: infra's default when the requirements name none, the
/// project's pin when they do. A switch to another Gunicorn restarts it (a
/// reload keeps the master's code), and the socket systemd holds refuses
/// no connection meanwhile, forward and back.
pub(crate) fn a_release_serves_with_its_own_gunicorn_and_a_new_one_restarts_with_no_failed_request(lab: &Lab) {
    let default = "gunicorn/23.0.0";
    assert_eq!(server_at(&lab.vip), default, "the example app names no Gunicorn: infra's default serves");
    let app = address("app-01");
    let master = lab.ssh_ok(&app, "tr '\\0' ' ' < /proc/$(systemctl show -p MainPID --value infra-app)/cmdline");
    assert!(master.contains("/srv/app/current/.venv/bin/gunicorn"), "the master runs the release's Gunicorn: {master}");
    let path = lab.ssh_ok(&app, "/srv/app/current/.venv/bin/python -c 'import sys; print(sys.path)'");
    assert!(!path.contains("dist-packages"), "the release's Python sees no Debian package: {path}");
    let pymysql = lab.ssh_ok(&app, "/srv/app/current/.venv/bin/python -c 'import pymysql; print(pymysql.__file__)'");
    assert!(pymysql.starts_with("/srv/app/"), "the release's own PyMySQL, not Debian's: {pymysql}");

    let pinned = lab.app_version_with("gunicorn22", 5, Some(("gunicorn==22.0.0\n", "gunicorn")));
    let plan = String::from_utf8_lossy(&lab.plan(&pinned, &["--no-progress"]).stdout).into_owned();
    assert!(plan.contains("the release serves with Gunicorn 22.0.0 instead of Gunicorn 23.0.0"), "{plan}");
    apply_under_load(lab, &pinned, "apply of a release pinning gunicorn==22.0.0");
    assert_eq!(server_at(&lab.vip), "gunicorn/22.0.0", "the project's pin serves");
    rollback_under_load(lab, &pinned);
    assert_eq!(server_at(&lab.vip), default, "the rollback restarted into the earlier release's Gunicorn");
    assert_success(&lab.apply(&lab.inventory, &[]), "apply back to the example app");
}

/// `PUT path` with `body` through `host`'s port 80: the status.
fn http_put(host: &str, path: &str, body: &str) -> u16 {
    use std::io::{Read, Write};
    let address = format!("{host}:80").parse().expect("an address");
    let mut stream = std::net::TcpStream::connect_timeout(&address, Duration::from_secs(2)).expect("connects");
    stream.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    let request = format!("PUT {path} HTTP/1.0\r\nHost: {host}\r\nContent-Length: {}\r\n\r\n{body}", body.len());
    stream.write_all(request.as_bytes()).expect("sends");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("reads");
    response.split_whitespace().nth(1).and_then(|code| code.parse().ok()).unwrap_or_default()
}

/// Issue 27: `app.shared` directories outlive releases. An upload through
/// the virtual IP lands in `/srv/app/shared/media` (the app's user owns
/// it; the release itself stays read-only to the app), and is still served
/// after a deploy of another release and a rollback.
pub(crate) fn an_upload_survives_a_deploy_and_a_rollback(lab: &Lab) {
    let app = address("app-01");
    let proof = format!("uploaded at {:?}\n", std::time::SystemTime::now());
    assert_eq!(http_put(&lab.vip, "/media/proof.txt", &proof), 201, "the upload is stored");
    let layout = lab.ssh_ok(&app, "readlink /srv/app/current/media; stat -c '%U %a' /srv/app/shared/media");
    assert_eq!(layout, "/srv/app/shared/media\nwww-data 750\n");
    let read_only = lab.ssh(&app, "runuser -u www-data -- touch /srv/app/current/written-by-the-app");
    assert!(!read_only.status.success(), "the release is not the app's to write");
    let served = || http_get(&lab.vip, "/media/proof.txt").expect("the virtual IP answers");

    let v2 = lab.app_version("upload-v2", 5);
    deploy_under_load(lab, &v2, &[], "deploy of another release after an upload");
    assert_eq!(served(), (200, proof.clone()), "the upload survives the deploy");
    rollback_under_load(lab, &v2);
    assert_eq!(served(), (200, proof), "and the rollback");
    assert_success(&lab.apply(&lab.inventory, &[]), "apply back to the example app");
}

/// Issue 27: a release's static files, built by its own command on the app
/// host, are published to the web host before the switch and served at
/// the release's own URL, which the app is told; the next release's
/// deleted file is gone from its URL while the old release's files stay
/// for a rollback; a failing build or one that leaves a link switches
/// nothing.
pub(crate) fn static_files_are_published_per_release_and_roll_back_with_it(lab: &Lab) {
    // The build copies `assets` into `$STATIC_ROOT`, as `collectstatic` would.
    let collect = "import os, shutil\nshutil.copytree('assets', os.environ['STATIC_ROOT'], dirs_exist_ok=True)\n";
    let version = |marker: &str, css: &str, old: bool, build: &str| {
        let mut files = vec![
            ("collect.py", collect.to_string()),
            ("fail.py", "raise SystemExit(3)\n".to_string()),
            ("link.py", "import os\nos.symlink('/etc/shadow', os.environ['STATIC_ROOT'] + '/shadow')\n".to_string()),
            ("assets/site.css", css.to_string()),
        ];
        if old {
            files.push(("assets/old.css", "old\n".to_string()));
        }
        let inventory = lab.app_version_changed(marker, AppChange { keep: 5, files, ..AppChange::default() });
        let text = std::fs::read_to_string(&inventory).expect("inventory");
        let settings = format!("  shared: [media]\n  static: {{build: [[python3, {build}]]}}\n");
        std::fs::write(&inventory, text.replacen("  shared: [media]\n", &settings, 1)).expect("write");
        inventory
    };
    let index = || -> serde_json::Value {
        let (_, body) = http_get(&lab.vip, "/").expect("the virtual IP answers");
        serde_json::from_str(&body).expect("the app's JSON")
    };
    let get = |path: String| http_get(&lab.vip, &path).expect("the virtual IP answers");

    let v1 = version("static-v1", "body { color: red }\n", true, "collect.py");
    let plan = String::from_utf8_lossy(&lab.plan(&v1, &["--no-progress"]).stdout).into_owned();
    assert!(plan.contains("▸ run `python3 collect.py` to build the release's static files"), "{plan}");
    assert!(plan.contains("+ publish them to web-01 in /var/www/infra/"), "{plan}");
    deploy_under_load(lab, &v1, &[], "deploy of a release with static files");
    let first = lab.serving_release();
    assert_eq!(index()["static"], format!("/static/{first}/").as_str(), "the app is told its release's URL");
    assert_eq!(index()["release"], first.as_str());
    assert_eq!(get(format!("/static/{first}/site.css")), (200, "body { color: red }\n".to_string()));
    assert_eq!(get(format!("/static/{first}/old.css")).0, 200);

    let v2 = version("static-v2", "body { color: blue }\n", false, "collect.py");
    deploy_under_load(lab, &v2, &[], "deploy of a release whose static files changed");
    let second = lab.serving_release();
    assert_ne!(second, first);
    assert_eq!(index()["static"], format!("/static/{second}/").as_str());
    assert_eq!(get(format!("/static/{second}/site.css")), (200, "body { color: blue }\n".to_string()));
    assert_eq!(get(format!("/static/{second}/old.css")).0, 404, "a file the release deleted is gone from its URL");
    assert_eq!(get(format!("/static/{first}/site.css")).0, 200, "the earlier release's files stay for a rollback");
    assert_eq!(lab.plan(&v2, &["--detailed-exitcode"]).status.code(), Some(0), "published once");

    rollback_under_load(lab, &v2);
    assert_eq!(lab.serving_release(), first, "back to the release before");
    assert_eq!(index()["static"], format!("/static/{first}/").as_str(), "the rollback's workers have its URL");

    // A build that fails, and one that leaves a link: nothing switches,
    // and nothing of theirs is left on the web host.
    let failing = version("static-fail", "x\n", false, "fail.py");
    let output = lab.deploy(&failing, &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success() && stderr.contains("exited with status 3"), "{stderr}");
    let linking = version("static-link", "y\n", false, "link.py");
    let output = lab.deploy(&linking, &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success() && stderr.contains("not a plain file or directory"), "{stderr}");
    assert_eq!(lab.serving_release(), first, "neither switched");
    let left = lab.ssh_ok(&address("web-01"), "ls -A /var/www/infra | grep -c partial || true");
    assert_eq!(left.trim(), "0", "no partial directory on the web host");
    assert_success(&lab.apply(&lab.inventory, &[]), "apply back to the example app");
}

/// Issue 27: requirements published only as source that compile
/// (mysqlclient, psycopg2) are built on the app host, as the app's user,
/// with what `app.build_packages` installs. Without the build packages
/// every failing build is named in one run with its own reason, and
/// nothing switches; with them, the release installs the built wheel
/// and serves, and the next release reuses the host's build.
pub(crate) fn a_compiled_dependency_is_built_on_the_app_host(lab: &Lab) {
    let app = address("app-01");
    let before = lab.serving_release();
    let both = lab.app_version_with("compiled-fail", 5, Some(("mysqlclient==2.2.7\npsycopg2==2.9.10\n", "MySQLdb")));
    let output = lab.apply(&both, &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains(
            "mysqlclient-2.2.7: building its wheel failed on app-01: Exception: Can not find valid pkg-config name"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("psycopg2-2.9.10: building its wheel failed on app-01:"), "{stderr}");
    assert!(stderr.contains("app.build_packages"), "{stderr}");
    assert_eq!(lab.serving_release(), before, "nothing switched");

    let compiled = lab.app_version_with("compiled", 5, Some(("mysqlclient==2.2.7\n", "MySQLdb")));
    let text = std::fs::read_to_string(&compiled).expect("inventory");
    let settings = "  shared: [media]\n  packages: [libmariadb3]\n  build_packages: [gcc, python3-dev, pkg-config, libmariadb-dev]\n";
    std::fs::write(&compiled, text.replacen("  shared: [media]\n", settings, 1)).expect("write");
    let started = Instant::now();
    apply_under_load(lab, &compiled, "apply of a release with a compiled dependency");
    eprintln!("first apply with mysqlclient built on the app host: {:.1} s", started.elapsed().as_secs_f64());
    let version =
        lab.ssh_ok(&app, "/srv/app/current/.venv/bin/python -c 'import MySQLdb; print(MySQLdb.version_info[:3])'");
    assert_eq!(version.trim(), "(2, 2, 7)");
    let built = lab.ssh_ok(&app, "ls /var/cache/infra/built-wheels/*/ && stat -c %U /srv/app/current/.venv");
    assert!(built.contains("mysqlclient-2.2.7-cp3"), "{built}");
    assert!(counter_at(&lab.vip) > 0, "the release with mysqlclient serves");
    assert_success(&lab.apply(&lab.inventory, &[]), "apply back to the example app");
}

/// A copy of the Django example changed by `change`, and an inventory
/// deploying it on this lab: inventories/lab-django.yml at its addresses.
fn django_version(lab: &Lab, marker: &str, change: impl FnOnce(&Path)) -> PathBuf {
    let source = lab.state.path().join(format!("django-{marker}"));
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/django");
    let copied = Command::new("cp").arg("-rT").arg(&example).arg(&source).status().expect("cp runs");
    assert!(copied.success(), "copy of the Django example");
    change(&source);
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("inventories/lab-django.yml"))
        .expect("inventories/lab-django.yml")
        .replace("10.20.0.", crate::SUBNET_PREFIX)
        .replace("/var/lib/infra/lab", &lab.state.path().display().to_string())
        .replace("../examples/django", &source.display().to_string())
        .replace("../examples", &format!("{}/examples", env!("CARGO_MANIFEST_DIR")));
    let path = lab.state.path().join(format!("inventory-django-{marker}.yml"));
    std::fs::write(&path, text).expect("write");
    path
}

/// Issue 27's Django example on the lab: mysqlclient built on the app
/// host, `collectstatic` per release, a worker taking jobs from the
/// database, an upload and a one-off command. v2 brings a migration, a
/// new compiled dependency and a changed worker; its deploy and the
/// rollback fail no request, and the rollback puts the static files and
/// the worker back on v1.
pub(crate) fn the_django_example_deploys_and_rolls_back_with_its_static_files_and_worker(lab: &Lab) {
    let index = || -> serde_json::Value {
        let (status, body) = http_get(&lab.vip, "/").expect("the virtual IP answers");
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).unwrap_or_else(|_| panic!("the example's JSON, got {body}"))
    };
    let worker_done_by = |expected: &str| {
        assert_eq!(http_put(&lab.vip, "/jobs", "a job"), 201, "a job is queued");
        for _ in 0..60 {
            let (_, body) = http_get(&lab.vip, "/jobs").expect("the virtual IP answers");
            if body.contains(&format!("\"{expected}\"")) {
                return;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        panic!("no job was done by `{expected}`: {}", http_get(&lab.vip, "/jobs").expect("answers").1);
    };
    let v1 = django_version(lab, "v1", |_| {});
    let started = Instant::now();
    deploy_under_load(lab, &v1, &[], "first deploy of the Django example");
    eprintln!(
        "first deploy of the Django example (mysqlclient built on the host): {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let first = index();
    let v1_id = first["release"].as_str().expect("a release").to_string();
    let css = first["stylesheet"].as_str().expect("a stylesheet").to_string();
    assert_eq!(css, format!("/static/{v1_id}/shop/site.css"));
    assert_eq!(http_get(&lab.vip, &css).expect("served").0, 200);
    let admin_css = format!("/static/{v1_id}/admin/css/base.css");
    assert_eq!(http_get(&lab.vip, &admin_css).expect("served").0, 200, "collectstatic gathered Django's own files");
    worker_done_by(&v1_id);
    let proof = "uploaded to the Django example\n";
    assert_eq!(http_put(&lab.vip, "/media/proof.txt", proof), 201);
    let run = lab.infra(
        &[
            "run",
            "-i",
            &v1.display().to_string(),
            "--",
            "python3",
            "manage.py",
            "createsuperuser",
            "--noinput",
            "--username",
            "admin",
            "--email",
            "admin@example.test",
        ],
        None,
    );
    assert_success(&run, "infra run -- python3 manage.py createsuperuser --noinput");

    let v2 = django_version(lab, "v2", |source| {
        let append = |file: &str, text: &str| {
            let path = source.join(file);
            let before = std::fs::read_to_string(&path).expect("read");
            std::fs::write(&path, before + text).expect("write");
        };
        append("requirements.txt", "crcmod==1.7\n");
        append(
            "site_config/settings.py",
            "\nimport crcmod._crcfunext  # noqa: E402,F401  (its C extension, built on the host)\n",
        );
        append("shop/models.py", "\n\nclass Note(models.Model):\n    text = models.CharField(max_length=64)\n");
        std::fs::write(
            source.join("shop/migrations/0002_note.py"),
            "from django.db import migrations, models\n\n\nclass Migration(migrations.Migration):\n    dependencies = [(\"shop\", \"0001_initial\")]\n    operations = [\n        migrations.CreateModel(name=\"Note\", fields=[(\"id\", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name=\"ID\")), (\"text\", models.CharField(max_length=64))]),\n    ]\n",
        )
        .expect("write");
        let work = source.join("shop/management/commands/work.py");
        let text = std::fs::read_to_string(&work)
            .expect("read")
            .replace("job.done_by = release", "job.done_by = \"v2-\" + release");
        std::fs::write(work, text).expect("write");
        std::fs::write(source.join("shop/static/shop/site.css"), "body { color: blue; }\n").expect("write");
    });
    deploy_under_load(lab, &v2, &[], "deploy of the Django example's v2");
    let second = index();
    let v2_id = second["release"].as_str().expect("a release").to_string();
    assert_ne!(v2_id, v1_id);
    let css2 = format!("/static/{v2_id}/shop/site.css");
    assert_eq!(second["stylesheet"], css2.as_str());
    assert_eq!(http_get(&lab.vip, &css2).expect("served"), (200, "body { color: blue; }\n".to_string()));
    worker_done_by(&format!("v2-{v2_id}"));

    rollback_under_load(lab, &v2);
    let back = index();
    assert_eq!(back["release"], v1_id.as_str(), "the rollback serves v1");
    assert_eq!(back["stylesheet"], css.as_str(), "with v1's static files");
    assert_eq!(http_get(&lab.vip, &css).expect("served").0, 200);
    worker_done_by(&v1_id);
    assert_eq!(
        http_get(&lab.vip, "/media/proof.txt").expect("served"),
        (200, proof.to_string()),
        "the upload survives"
    );
    assert_success(&lab.apply(&lab.inventory, &[]), "apply back to the example app");
}

/// An Alembic migration after `down`: records that it ran, or fails as a
/// real migration would.
fn migration(revision: &str, down: &str, fail: bool) -> String {
    let failure =
        if fail { "    raise RuntimeError(\"migration failed: column `note` already exists\")\n" } else { "" };
    format!(
        "from alembic import op\n\nrevision = \"{revision}\"\ndown_revision = \"{down}\"\n\n\ndef upgrade():\n{failure}\
         \x20   op.execute(\"CREATE TABLE IF NOT EXISTS migrations (name VARCHAR(32) PRIMARY KEY)\")\n\
         \x20   op.execute(\"REPLACE INTO migrations VALUES ('{revision}')\")\n\n\ndef downgrade():\n    pass\n"
    )
}

/// A release's migration runs once, as the app's user with its settings,
/// before the switch; a failing one stops the apply with the migration's
/// own message and switches nothing: the host still serves the release it
/// served, and the failed one is gone.
pub(crate) fn migrations_run_before_the_switch_and_a_failed_one_switches_nothing(lab: &Lab) {
    let first = ("0002_mig1", migration("0002_mig1", "0001", false));
    let migrating =
        lab.app_version_changed("mig1", AppChange { keep: 5, migrations: vec![first.clone()], ..AppChange::default() });
    let plan = String::from_utf8_lossy(&lab.plan(&migrating, &["--no-progress"]).stdout).into_owned();
    assert!(
        plan.contains("migrate `python3 -m alembic upgrade head` here, once for the fleet, before any host switches"),
        "{plan}"
    );
    let applied = lab.apply(&migrating, &[]);
    assert_success(&applied, "apply of a release with a migration");
    assert!(String::from_utf8_lossy(&applied.stderr).contains("app-01: migrating the database"));
    let ran = lab.ssh_ok(
        &address("db-01"),
        "mariadb -N -B app -e 'SELECT name FROM migrations; SELECT version_num FROM alembic_version'",
    );
    assert_eq!(ran.split_whitespace().collect::<Vec<_>>(), ["0002_mig1", "0002_mig1"], "{ran}");
    let serving = lab.releases()["current"].as_str().expect("current").to_string();

    let second = ("0003_mig2", migration("0003_mig2", "0002_mig1", true));
    let failing =
        lab.app_version_changed("mig2", AppChange { keep: 5, migrations: vec![first, second], ..AppChange::default() });
    let failed = lab.apply(&failing, &[]);
    assert_eq!(failed.status.code(), Some(1), "a failed migration fails the apply");
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(stderr.contains("migration failed: column `note` already exists"), "the migration's own message: {stderr}");
    let after = lab.releases_of(&failing);
    assert_eq!(after["current"], serving.as_str(), "nothing switched");
    let failed_id = after["inventory"].as_str().expect("the failed release's id");
    let listed = after["releases"].as_array().expect("releases");
    assert!(!listed.iter().any(|release| release["id"] == failed_id), "the failed release is gone: {after}");
    assert!(counter_at(&lab.vip) > 0, "the app still serves");
    // Back to the example app, whose migrations stop at 0001: its release
    // already went through them, so apply switches to it without running
    // them again (Alembic would refuse a database ahead of the code).
    let back = lab.apply(&lab.inventory, &[]);
    assert_success(&back, "apply back to the example app");
    assert!(!String::from_utf8_lossy(&back.stderr).contains("migrating the database"));
    // What `alembic downgrade` would do, so later releases start from 0001.
    lab.ssh_ok(
        &address("db-01"),
        "mariadb app -e \"DROP TABLE migrations; UPDATE alembic_version SET version_num = '0001'\"",
    );
}

/// A release whose app crashes at import never replaces the one serving:
/// the apply stops at the first app host with the app's own error, before
/// anything is swapped in, and the crashed release is gone.
pub(crate) fn a_release_that_crashes_at_import_stops_at_the_first_host(lab: &Lab) {
    let serving = lab.releases()["current"].as_str().expect("current").to_string();
    let crash = "raise RuntimeError(\"cannot start: SECRET_KEY is not set\")\n";
    let crashing = lab.app_version_changed("crash", AppChange { keep: 5, code: crash, ..AppChange::default() });
    let failed = lab.apply(&crashing, &[]);
    assert_eq!(failed.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(stderr.contains("app-01") && stderr.contains("cannot start: SECRET_KEY is not set"), "{stderr}");
    let after = lab.releases_of(&crashing);
    assert_eq!(after["current"], serving.as_str(), "the host still serves what it served");
    let crashed = after["inventory"].as_str().expect("the crashed release's id");
    assert!(!after["releases"].as_array().expect("releases").iter().any(|release| release["id"] == crashed), "{after}");
    assert!(counter_at(&lab.vip) > 0);
}

/// Runs `apply` of `inventory` and kills infra once app-01 reports `step`;
/// returns whether it got that far.
fn apply_killed_at(lab: &Lab, inventory: &Path, step: &str) -> bool {
    use std::io::BufRead;
    let mut child = lab
        .apply_command(inventory, &[])
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("infra runs");
    let stderr = child.stderr.take().expect("stderr");
    let wanted = format!("app-01: {step}");
    let reached = std::io::BufReader::new(stderr).lines().map_while(Result::ok).any(|line| line.contains(&wanted));
    if reached {
        child.kill().expect("kill");
    }
    let _ = child.wait();
    reached
}

/// A deploy killed at any step leaves `current` pointing at a complete
/// release that serves, and the next run completes the deploy.
pub(crate) fn a_killed_deploy_leaves_current_valid_and_the_next_run_completes_it(lab: &Lab) {
    let kills = [
        ("unpacking the release", "humanize==4.9.0\n"),
        ("installing the release's packages", "humanize==4.10.0\n"),
        ("importing the new release", "humanize==4.11.0\n"),
        ("swapping files in", "humanize==4.11.0\n"),
    ];
    for (index, (step, requirements)) in kills.into_iter().enumerate() {
        let inventory = lab.app_version_with(&format!("kill{index}"), 5, Some((requirements, "humanize")));
        assert!(apply_killed_at(lab, &inventory, step), "the apply never reached `{step}`");
        std::thread::sleep(Duration::from_millis(500));
        let current = lab.ssh_ok(
            &address("app-01"),
            "readlink -e /srv/app/current && test -e /srv/app/current/.infra-complete && echo complete",
        );
        assert!(current.contains("complete"), "after a kill at `{step}`, current is not a complete release: {current}");
        assert!(counter_at(&lab.vip) > 0, "the app serves after a kill at `{step}`");
        assert_success(&lab.apply(&inventory, &[]), &format!("the apply after a kill at `{step}`"));
        let plan = lab.plan(&inventory, &["--detailed-exitcode"]);
        assert_eq!(
            plan.status.code(),
            Some(0),
            "converged after a kill at `{step}`: {}",
            String::from_utf8_lossy(&plan.stdout)
        );
        eprintln!("a deploy killed at `{step}` left a valid current release; the next run completed it");
    }
    assert_success(&lab.apply(&lab.inventory, &[]), "apply back to the example app");
}

/// The example app as a git repository, its one commit tagged `v1`.
pub(crate) fn example_repository(lab: &Lab) -> PathBuf {
    let repository = lab.state.path().join("app-repository");
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/app");
    let copied = Command::new("cp").arg("-rT").arg(&example).arg(&repository).status().expect("cp runs");
    assert!(copied.success(), "copy of the example app");
    let git = |args: &[&str]| super::support::git(&repository, args);
    git(&["init", "-q", "-b", "main"]);
    std::fs::write(repository.join(".gitignore"), "__pycache__/\n").expect("write");
    git(&["add", "-A"]);
    git(&["commit", "-q", "-m", "v1"]);
    git(&["tag", "v1"]);
    repository
}

/// A git repository of the example app with two tags: `v1` as it is, and
/// `v2` with changed code, a PyPI package the app imports and an Alembic
/// migration.
fn app_repository(lab: &Lab) -> PathBuf {
    let repository = example_repository(lab);
    let git = |args: &[&str]| super::support::git(&repository, args);
    let append = |file: &str, text: &str| {
        let path = repository.join(file);
        let before = std::fs::read_to_string(&path).expect("read");
        std::fs::write(&path, format!("{before}{text}")).expect("write");
    };
    append("app.py", "\n# v2: with humanize\nimport humanize  # noqa: E402\n");
    append("requirements.txt", "humanize==4.11.0\n");
    let migration_file = repository.join("migrations/versions/0002_v2.py");
    std::fs::write(migration_file, migration("0002_v2", "0001", false)).expect("write");
    git(&["add", "-A"]);
    git(&["commit", "-q", "-m", "v2: humanize and a migration"]);
    git(&["tag", "v2"]);
    // v3 imports, but every request fails: only its health check finds out.
    append(
        "app.py",
        "\n\n@app.before_request\ndef broken():\n    raise RuntimeError(\"v3 is broken: SETTINGS_MODULE is not set\")\n",
    );
    git(&["commit", "-q", "-am", "v3: broken"]);
    git(&["tag", "v3"]);
    repository
}

/// Each app host's current release, from `infra releases`.
fn current_releases(lab: &Lab, inventory: &Path) -> Vec<(String, String)> {
    let output = lab.command().args(["releases", "--format", "json", "-i"]).arg(inventory).output();
    let output = output.expect("infra runs");
    assert_success(&output, "releases");
    let document: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    document["hosts"]
        .as_array()
        .expect("hosts")
        .iter()
        .map(|host| {
            let name = host["host"].as_str().unwrap_or_default().to_string();
            (name, host["current"].as_str().unwrap_or_default().to_string())
        })
        .collect()
}

/// The whole loop on a fleet of two app hosts: `infra deploy` of a git
/// tag, then of the next tag (new code, a new PyPI package, a migration)
/// while requests run through the virtual IP, then `infra rollback`: no
/// request fails, every app host ends on the same release each time, and
/// the rollback rebuilds nothing (v1's packages are untouched).
pub(crate) fn a_git_deploy_of_code_a_package_and_a_migration_then_a_rollback(lab: &Lab) -> GitDeploy {
    let repository = app_repository(lab);
    let example = format!("source: {}/examples/app", env!("CARGO_MANIFEST_DIR"));
    let git_source = format!("source: {{git: {}, ref: v1}}", repository.display());
    let inventory = lab.inventory_with("git-deploy.yml", &example, &git_source);

    assert_success(&lab.deploy(&inventory, &[]), "deploy of v1");
    assert!(counter_at(&lab.vip) > 0, "v1 serves through the virtual IP");
    let v1 = current_releases(lab, &inventory);
    assert!(v1.len() == 2 && v1[0].1 == v1[1].1, "{v1:?}");
    let v1_id = v1[0].1.clone();
    let addresses: std::collections::BTreeMap<String, String> =
        super::bench::bench_inventory(7).1.into_iter().collect();
    let packages_of_v1 = |host: &str| {
        let venv = format!("/srv/app/releases/{v1_id}/.venv");
        lab.ssh_ok(&addresses[host], &format!("stat -c '%i %Y' {venv}/.infra-requirements {venv}/bin/python3"))
    };
    let before: Vec<String> = v1.iter().map(|(host, _)| packages_of_v1(host)).collect();

    let started = Instant::now();
    let output = deploy_under_load(lab, &inventory, &["--source", "v2"], "deploy of v2 (code, a package, a migration)");
    eprintln!("deploy of v2 to two app hosts: {:.1} s", started.elapsed().as_secs_f64());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let summary: Vec<&str> =
        stderr.lines().skip_while(|line| !line.starts_with("deploy:")).take_while(|line| !line.is_empty()).collect();
    eprintln!("{}", summary.join("\n"));
    for expected in [
        "deploy: release",
        "at v2 (commit",
        "requirements.txt: + humanize==4.11.0",
        "installing the release's packages",
    ] {
        assert!(stderr.contains(expected), "`{expected}` in: {stderr}");
    }
    assert_eq!(stderr.matches("migrating the database").count(), 1, "the migration runs once: {stderr}");
    let v2 = current_releases(lab, &inventory);
    assert!(v2[0].1 == v2[1].1 && v2[0].1 != v1_id, "every app host serves v2: {v2:?}");
    let ran = lab.ssh_ok(&addresses["db-01"], "mariadb -N -B app -e 'SELECT version_num FROM alembic_version'");
    assert_eq!(ran.trim(), "0002_v2");
    let listed = lab.command().args(["releases", "-i"]).arg(&inventory).output().expect("infra runs");
    let listed = String::from_utf8_lossy(&listed.stdout).into_owned();
    assert!(listed.contains("at v2 (") && listed.contains(" by "), "who and what in: {listed}");

    let started = Instant::now();
    let rollback = under_load_rollback(lab, &inventory);
    let seconds = started.elapsed().as_secs_f64();
    eprintln!("rollback of two app hosts from v2 to v1: {seconds:.1} s under load");
    assert!(!String::from_utf8_lossy(&rollback.stderr).contains("install"));
    let document: serde_json::Value = serde_json::from_slice(&rollback.stdout).expect("rollback's JSON");
    assert_eq!(document["rollback"]["release"], v1_id.as_str(), "{document}");
    assert_eq!(document["rollback"]["hosts"].as_array().map(Vec::len), Some(2), "a switch per app host: {document}");
    let back = current_releases(lab, &inventory);
    assert!(back.iter().all(|(_, id)| *id == v1_id), "every app host is back on v1: {back:?}");
    let after: Vec<String> = back.iter().map(|(host, _)| packages_of_v1(host)).collect();
    assert_eq!(before, after, "rolling back rebuilt no package");
    assert!(counter_at(&lab.vip) > 0, "v1 serves on the migrated database");

    // v3 passes the import check but fails every request: its health check
    // fails on the first app host, which goes back to v1; the other never
    // sees v3, and the error is the app's own.
    let failed = lab.deploy(&inventory, &["--health-timeout", "3", "--source", "v3"]);
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert_eq!(failed.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("at step `health checks`"), "{stderr}");
    assert!(stderr.contains("v3 is broken: SETTINGS_MODULE is not set"), "the app's own error: {stderr}");
    let after_failure = current_releases(lab, &inventory);
    assert!(after_failure.iter().all(|(_, id)| *id == v1_id), "both app hosts still on v1: {after_failure:?}");
    let releases_dirs = |host: &str| lab.ssh_ok(&addresses[host], "ls /srv/app/releases");
    let v2_id = &v2[0].1;
    for (host, _) in &after_failure {
        let present: Vec<String> = releases_dirs(host).split_whitespace().map(String::from).collect();
        assert!(present.contains(&v1_id) && present.contains(v2_id) && present.len() == 2, "{host}: {present:?}");
    }
    assert!(counter_at(&lab.vip) > 0, "v1 still serves");
    GitDeploy { inventory, repository, v2_id: v2_id.clone() }
}

/// What [`a_git_deploy_of_code_a_package_and_a_migration_then_a_rollback`]
/// leaves for the next scenario: its inventory (`ref: v1`), the app's
/// repository, and the release v2 became.
pub(crate) struct GitDeploy {
    inventory: PathBuf,
    repository: PathBuf,
    v2_id: String,
}

/// The sequence that once left a fleet on two releases: after a deploy, a
/// rollback and another deploy, a plain `apply` of the inventory (still
/// `ref: v1`) keeps the deployed release on every host and says so; moving
/// the inventory to v2 switches every host to it without running any
/// migration again (v2's ran once, for the fleet, when it was deployed),
/// and every host's record of migrated releases is the same.
pub(crate) fn a_deployed_release_stays_until_the_inventory_names_another(lab: &Lab, deployed: &GitDeploy) {
    let git = |args: &[&str]| super::support::git(&deployed.repository, args);
    git(&["checkout", "-q", "v2"]);
    let app = deployed.repository.join("app.py");
    let code = std::fs::read_to_string(&app).expect("read");
    std::fs::write(&app, format!("{code}\n# v4: v2 and one more migration\n")).expect("write");
    let migration_file = deployed.repository.join("migrations/versions/0003_v4.py");
    std::fs::write(migration_file, migration("0003_v4", "0002_v2", false)).expect("write");
    git(&["add", "-A"]);
    git(&["commit", "-q", "-m", "v4: v2 with a second migration"]);
    git(&["tag", "v4"]);

    // `plan --source` shows what the deploy will do, and changes nothing.
    let preview = lab.plan(&deployed.inventory, &["--no-progress", "--source", "v4"]);
    let preview = String::from_utf8_lossy(&preview.stdout).into_owned();
    assert_eq!(preview.matches("▸ migrate").count(), 1, "{preview}");
    assert!(preview.contains("what `infra deploy --source v4` asks for"), "{preview}");
    assert!(preview.contains("record that `infra deploy --source v4` chose release"), "{preview}");
    assert!(!preview.contains("web-00"), "a deploy's plan is of the app hosts: {preview}");
    let deployed_v4 = lab.deploy(&deployed.inventory, &["--source", "v4"]);
    assert_success(&deployed_v4, "deploy of v4");
    let stderr = String::from_utf8_lossy(&deployed_v4.stderr);
    assert_eq!(stderr.matches("migrating the database").count(), 1, "v4's migration runs once: {stderr}");
    let v4 = current_releases(lab, &deployed.inventory);
    let v4_id = v4[0].1.clone();
    assert!(v4.iter().all(|(_, id)| *id == v4_id) && v4_id != deployed.v2_id, "{v4:?}");

    let plan = lab.plan(&deployed.inventory, &["--no-progress"]);
    let text = format!("{}{}", String::from_utf8_lossy(&plan.stdout), String::from_utf8_lossy(&plan.stderr));
    assert!(
        text.contains(&format!("app-01, app-03 keep release {v4_id}, which `infra deploy --source v4` put there")),
        "{text}"
    );
    assert!(!text.contains("from release"), "nothing switches: {text}");
    let applied = apply_under_load(lab, &deployed.inventory, "apply of the inventory that still says v1");
    assert!(String::from_utf8_lossy(&applied.stderr).contains("keep release"), "apply warns too");
    assert!(current_releases(lab, &deployed.inventory).iter().all(|(_, id)| *id == v4_id), "every host stays on v4");
    let listed = lab.command().args(["releases", "-i"]).arg(&deployed.inventory).output().expect("infra runs");
    let listed = String::from_utf8_lossy(&listed.stdout).into_owned();
    assert_eq!(listed.matches("apply keeps it: `infra deploy --source v4` chose it").count(), 2, "{listed}");

    let moved = std::fs::read_to_string(&deployed.inventory).expect("read").replacen("ref: v1", "ref: v2", 1);
    let moved_inventory = deployed.inventory.with_file_name("git-deploy-v2.yml");
    std::fs::write(&moved_inventory, moved).expect("write");
    let plan = String::from_utf8_lossy(&lab.plan(&moved_inventory, &["--no-progress"]).stdout).into_owned();
    assert!(plan.contains(&format!("from release {v4_id} to release {}", deployed.v2_id)), "{plan}");
    assert!(plan.contains("the running app changes"), "{plan}");
    assert!(!plan.contains("migrate `"), "v2 migrated when it was deployed: {plan}");
    let applied = apply_under_load(lab, &moved_inventory, "apply of the inventory moved to v2");
    assert!(!String::from_utf8_lossy(&applied.stderr).contains("migrating the database"));
    let on_v2 = current_releases(lab, &moved_inventory);
    assert!(on_v2.iter().all(|(_, id)| *id == deployed.v2_id), "every host on v2: {on_v2:?}");
    let addresses: std::collections::BTreeMap<String, String> =
        super::bench::bench_inventory(7).1.into_iter().collect();
    let version = lab.ssh_ok(&addresses["db-01"], "mariadb -N -B app -e 'SELECT version_num FROM alembic_version'");
    assert_eq!(version.trim(), "0003_v4", "going back to v2 ran no migration, up or down");
    let ledgers: Vec<String> =
        on_v2.iter().map(|(host, _)| lab.ssh_ok(&addresses[host], "sort /var/lib/infra/migrated")).collect();
    assert_eq!(ledgers[0], ledgers[1], "one record of migrated releases on every app host");
    for id in [&deployed.v2_id, &v4_id] {
        assert_eq!(ledgers[0].lines().filter(|line| line == id).count(), 1, "{id} once in: {}", ledgers[0]);
    }
    assert!(counter_at(&lab.vip) > 0, "v2 serves");

    // A host that knows of no migration (a host new to the fleet): a run
    // limited to it still reads the others' record, so v4 does not migrate
    // again, and the host learns that it did.
    lab.ssh_ok(&addresses["app-03"], "rm /var/lib/infra/migrated");
    let forward = std::fs::read_to_string(&deployed.inventory).expect("read").replacen("ref: v1", "ref: v4", 1);
    let forward_inventory = deployed.inventory.with_file_name("git-deploy-v4.yml");
    std::fs::write(&forward_inventory, forward).expect("write");
    let plan = lab.plan(&forward_inventory, &["--no-progress", "--limit", "app-03"]);
    let text = String::from_utf8_lossy(&plan.stdout);
    assert!(text.contains(&format!("to release {v4_id}")) && !text.contains("migrate `"), "{text}");
    let learns = text.lines().find(|line| line.contains("record that release")).unwrap_or_default();
    assert!(learns.contains(&v4_id), "app-03 learns that v4 migrated: {text}");
    assert!(!text.contains("app-01 ("), "only app-03 is planned: {text}");
}

/// `infra rollback -i inventory` under load.
fn under_load_rollback(lab: &Lab, inventory: &Path) -> Output {
    under_load(lab, "rollback of two app hosts", || {
        lab.command().args(["rollback", "--yes", "--format", "json", "-i"]).arg(inventory).output().expect("infra runs")
    })
}

/// `inventory` with `app.before_switch` and `app.after_switch` set to the
/// YAML flow lists `before` and `after`.
fn with_switch_hooks(inventory: &Path, before: &str, after: &str) -> PathBuf {
    let text = std::fs::read_to_string(inventory).expect("inventory");
    let hooks = format!("  shared: [media]\n  before_switch: {before}\n  after_switch: {after}\n");
    assert!(text.contains("  shared: [media]\n"), "the lab inventory shares media");
    let path = inventory.with_extension("hooks.yml");
    std::fs::write(&path, text.replacen("  shared: [media]\n", &hooks, 1)).expect("write");
    path
}

/// Issue 27: a release's commands per phase. `before_switch` runs on the
/// host in the new release, as the app, before it switches (a failure
/// switches nothing); `after_switch` once it is healthy there (a failure
/// switches it back).
pub(crate) fn release_hooks_run_before_and_after_the_switch_and_a_failing_one_switches_back(lab: &Lab) {
    let app = address("app-01");
    let before_id = lab.serving_release();
    let inventory = lab.app_version("hooks", 5);
    // A script of the release marks each phase in the shared media.
    let script = "import os, sys\nopen(os.path.join('media', sys.argv[1] + '-' + os.path.basename(os.getcwd())), 'w').write('ok')\n";
    std::fs::write(lab.state.path().join("app-hooks/hookmark.py"), script).expect("write");
    let hooked = with_switch_hooks(&inventory, "[[python3, hookmark.py, before]]", "[[python3, hookmark.py, after]]");
    let plan = String::from_utf8_lossy(&lab.plan(&hooked, &["--no-progress"]).stdout).into_owned();
    assert!(plan.contains("▸ run `python3 hookmark.py before` before the switch"), "{plan}");
    assert!(plan.contains("▸ run `python3 hookmark.py after` once the host is healthy on it"), "{plan}");
    apply_under_load(lab, &hooked, "apply of a release with switch hooks");
    let id = lab.serving_release();
    assert_ne!(id, before_id);
    let marks = lab.ssh_ok(&app, &format!("cat /srv/app/shared/media/before-{id} /srv/app/shared/media/after-{id}"));
    assert_eq!(marks, "okok", "each ran in the new release, as the app");

    for (marker, before, after) in
        [("hooks-fail-before", "[[/bin/false]]", "[]"), ("hooks-fail-after", "[]", "[[/bin/false]]")]
    {
        let failing = with_switch_hooks(&lab.app_version(marker, 5), before, after);
        let output = lab.apply(&failing, &[]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success() && stderr.contains("`/bin/false` exited with status 1"), "{marker}: {stderr}");
        assert_eq!(lab.serving_release(), id, "{marker}: the host serves the release it served");
    }
    assert_success(&lab.apply(&lab.inventory, &[]), "apply back to the example app");
}

/// `inventory` with `app.processes` set to the YAML flow list `processes`.
fn with_processes(inventory: &Path, name: &str, processes: &str) -> PathBuf {
    let text = std::fs::read_to_string(inventory).expect("inventory");
    assert!(text.contains("  shared: [media]\n"), "the lab inventory shares media");
    let path = inventory.with_file_name(format!("{name}.yml"));
    let settings = format!("  shared: [media]\n  processes: {processes}\n");
    std::fs::write(&path, text.replacen("  shared: [media]\n", &settings, 1)).expect("write");
    path
}

/// Issue 27: `app.processes` run as systemd units from the serving
/// release: each instance starts with the app, is restarted onto the new
/// release by a deploy and back by a rollback; lowering a count stops and
/// disables the extra instances, removing the process stops the rest.
pub(crate) fn app_processes_follow_deploys_and_rollbacks_and_a_lower_count_stops_the_rest(lab: &Lab) {
    let app = address("app-01");
    let worker = |count: u32| format!("[{{name: worker, command: [python3, worker.py], count: {count}}}]");
    // Each instance's beat names the release it runs from, and its pid is the unit's.
    let beats_from = |release: &str| {
        let check = "for i in 1 2; do read -r release pid < /srv/app/shared/media/worker-$i && \
                     [ \"$pid\" = \"$(systemctl show -p MainPID --value infra-app-worker@$i)\" ] && echo \"$release\"; done";
        for _ in 0..40 {
            if lab.ssh_ok(&app, check) == format!("{release}\n{release}\n") {
                return;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        panic!("the workers never beat from release {release}: {}", lab.ssh_ok(&app, check));
    };
    let two = with_processes(&lab.inventory, "workers-2", &worker(2));
    let plan = String::from_utf8_lossy(&lab.plan(&two, &["--no-progress"]).stdout).into_owned();
    assert!(
        plan.contains("▸ start infra-app-worker@1.service") && plan.contains("▸ start infra-app-worker@2.service"),
        "{plan}"
    );
    apply_under_load(lab, &two, "apply that starts two workers");
    let v1 = lab.serving_release();
    beats_from(&v1);
    // Their journal is the app's: `infra logs HOST gunicorn` shows it.
    let logs = lab.infra(&["logs", "-i", &two.display().to_string(), "app-01", "gunicorn", "-n", "20000"], None);
    let logs = String::from_utf8_lossy(&logs.stdout).into_owned();
    assert!(logs.contains(&format!("worker 2: release {v1}")), "the worker's own line is in the app's journal");

    let v2 = with_processes(&lab.app_version("workers-v2", 5), "workers-v2", &worker(2));
    deploy_under_load(lab, &v2, &[], "deploy of a release with workers");
    let v2_id = lab.serving_release();
    assert_ne!(v2_id, v1);
    beats_from(&v2_id);
    rollback_under_load(lab, &v2);
    // Back to the newest healthy release before v2 (an earlier scenario's,
    // or v1): wherever the link points now, the workers follow.
    let back = lab.serving_release();
    assert_ne!(back, v2_id);
    beats_from(&back);
    assert_success(&lab.apply(&two, &[]), "apply back to the inventory's release");
    beats_from(&v1);

    let one = with_processes(&lab.inventory, "workers-1", &worker(1));
    let plan = String::from_utf8_lossy(&lab.plan(&one, &["--no-progress"]).stdout).into_owned();
    assert!(plan.contains("■ stop infra-app-worker@2.service (no longer in `app.processes`)"), "{plan}");
    assert!(!plan.contains("worker@1"), "the first instance stays as it is: {plan}");
    assert_success(&lab.apply(&one, &[]), "apply of one worker");
    let states =
        "systemctl is-active infra-app-worker@1 infra-app-worker@2; systemctl is-enabled infra-app-worker@2 || true";
    assert_eq!(lab.ssh(&app, states).stdout, b"active\ninactive\ndisabled\n");
    assert_success(&lab.apply(&lab.inventory, &[]), "apply without workers");
    let gone = lab.ssh(&app, "systemctl is-active infra-app-worker@1 || true");
    assert_eq!(String::from_utf8_lossy(&gone.stdout), "inactive\n");
    assert_eq!(lab.plan(&lab.inventory, &["--detailed-exitcode"]).status.code(), Some(0), "nothing left to change");
}
